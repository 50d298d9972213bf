import CSluiceLua
import SluiceCore

/// Resource limits of one Lua state.
public struct LuaLimits: Sendable, Equatable {
    /// Lua VM instructions one call (or one module load) may run.
    public var instructions: Int
    /// Bytes the whole state may hold (code, module state and the events in flight).
    public var memoryBytes: Int

    /// Defaults from the spec: 1,000,000 instructions, 64 MiB.
    public init(instructions: Int = 1_000_000, memoryBytes: Int = 64 << 20) {
        self.instructions = instructions
        self.memoryBytes = memoryBytes
    }
}

/// Why one UDF call (or one decode/encode) failed. The event goes to the dead letter sink.
public struct LuaFailure: Error, Sendable, CustomStringConvertible {
    /// The class of failure.
    public enum Kind: Sendable, Equatable {
        /// A Lua error raised by the UDF (or a misuse such as a released handle).
        case runtime
        /// The per-call instruction budget was spent.
        case instructionLimit
        /// The state went over its memory limit; the engine is poisoned and must be replaced.
        case memoryLimit
        /// The UDF returned a value of the wrong type.
        case badReturn
        /// The value cannot be written as JSON (NaN, a function, a cycle...).
        case encode
        /// The input bytes are not valid JSON or not valid UTF-8.
        case decode
    }

    /// The class of failure.
    public var kind: Kind
    /// The Lua error message or the reason.
    public var message: String
    /// The Lua stack traceback, for runtime errors.
    public var traceback: String?

    /// Creates a failure.
    public init(kind: Kind, message: String, traceback: String? = nil) {
        self.kind = kind
        self.message = message
        self.traceback = traceback
    }

    /// The message, prefixed with the kind unless it is a plain runtime error.
    public var description: String {
        switch kind {
        case .runtime: return message
        case .instructionLimit, .memoryLimit: return message
        case .badReturn: return "bad return: \(message)"
        case .encode: return "encode: \(message)"
        case .decode: return "decode: \(message)"
        }
    }
}

/// A module or expression that failed to load (missing file, syntax error, error at load time,
/// not a function). `description` reads `udfs/enrich.lua:12: message`.
public struct LuaLoadError: Error, Sendable, CustomStringConvertible {
    /// The module name (`enrich`, `lib.util`) or the expression label.
    public var module: String
    /// The file as shown in messages (`udfs/enrich.lua`), or the expression label.
    public var file: String
    /// The file's path on disk, when the error is about a module file.
    public var path: String?
    /// The line the error points at, if Lua reported one.
    public var line: Int?
    /// The message without the `file:line:` prefix.
    public var message: String

    /// Creates a load error.
    public init(module: String, file: String, path: String? = nil, line: Int? = nil, message: String) {
        self.module = module
        self.file = file
        self.path = path
        self.line = line
        self.message = message
    }

    /// `file:line: message`, or `file: message` without a line.
    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// A function loaded into one engine (a module function or a compiled expression).
public struct LuaFunctionID: Hashable, Sendable {
    /// Index of the function inside its engine.
    public let rawValue: Int32
}

/// An event held inside one engine's Lua state: a table (JSON) or a string (text).
/// Valid until released; meaningless in any other engine.
public struct LuaEventHandle: Hashable {
    /// Slot of the event inside its engine.
    public let rawValue: Int32
}

private final class LogBox {
    let log: @Sendable (String, String) -> Void
    init(_ log: @escaping @Sendable (String, String) -> Void) { self.log = log }
}

private func bytesToString(_ p: UnsafePointer<CChar>?, _ n: Int) -> String {
    guard let p, n > 0 else { return "" }
    return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
}

private let logThunk: sl_log_fn = { ctx, level, levelLen, msg, msgLen in
    guard let ctx else { return }
    let box = Unmanaged<LogBox>.fromOpaque(ctx).takeUnretainedValue()
    box.log(bytesToString(level, levelLen), bytesToString(msg, msgLen))
}

private let counterThunk: sl_counter_fn = { ctx, name, len, value in
    guard let ctx else { return }
    ctx.assumingMemoryBound(to: [(String, Int64)].self).pointee.append((bytesToString(name, len), value))
}

/// One sandboxed Lua state with a pipeline's UDFs loaded.
///
/// Not thread-safe and not `Sendable`: the thread that builds it owns it (one engine per worker).
///
/// How events look in Lua and how they are written back:
/// - A JSON object is a table. A null field reads as nil; fields that were null in the input
///   are written back as null unless the UDF assigns them a value (assigning nil keeps the null).
///   The global `null` writes an explicit null.
/// - A JSON array is a sequence with a shared array metatable, so `[]` stays `[]`; `array(...)`
///   makes one. Inside arrays JSON null is the `null` sentinel, so arrays have no holes.
///   Other tables: keys exactly 1..n -> array; empty -> `{}`; otherwise an object (integer keys
///   become strings; other key types fail to encode). For array-marked tables only 1..#t is written.
/// - Object keys are written sorted bytewise (Lua tables have no order), so output is deterministic.
/// - Integers are 64-bit integers; floats stay floats (`1.0` is written `1.0`, shortest text that
///   reads back exactly); numbers beyond int64 decode as floats. NaN and infinity fail to encode.
/// - Strings must be valid UTF-8 (decode rejects invalid input and lone `\u` surrogates; encode
///   rejects invalid UTF-8 a UDF made). Nesting is capped at 128 levels both ways (cycles fail).
/// - Text events are Lua strings; `encodeText` writes a string raw and anything else as JSON.
///
/// UDFs are `function(event, ctx)`; `ctx` has `emit`, `now`, `log`, `count`, `meta`, `version`.
/// The sandbox is a whitelist (see `sluice_lua.h`/`sandbox.c`): no io, os beyond time/clock/date,
/// debug, package, dofile/loadfile, string.dump, binary chunks, `__gc`; `require` only inside
/// `udfDir`; `xpcall` handlers run after the error unwound (not yieldable across).
public final class LuaEngine {
    /// The C engine; internal so that extensions in other files (LuaEngine+Shape) can reach it.
    let engine: OpaquePointer
    private let logBox: LogBox
    private let udfDir: String
    private let displayDir: String
    private var functionCache: [String: LuaFunctionID] = [:]
    /// Labels of the inline expressions compiled here, for their error messages.
    private var expressionSites = ExpressionSites()
    private var metaBlob: [UInt8] = []
    private var metaHeaders: [Int] = []
    /// Keeps `ctx.lookup`'s provider alive while the C engine points at it (LuaEngine+Lookup).
    var lookupBox: AnyObject?
    /// The C engine, for the calls in other files of this module.
    var cEngine: OpaquePointer { engine }
    /// The limits this engine was built with.
    public let limits: LuaLimits
    /// The UDF version passed to `ctx.version`.
    public let version: Int

    /// Builds a state with the sandbox; modules are loaded on demand by `function(module:name:)`.
    /// `log` receives `ctx.log(level, msg)` and `print(...)` (level "info").
    public init(udfDir: String, limits: LuaLimits = LuaLimits(), version: Int = 1,
                log: @escaping @Sendable (String, String) -> Void) throws(LuaLoadError) {
        self.udfDir = udfDir
        var trimmed = Substring(udfDir)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        let last = trimmed.split(separator: "/").last.map(String.init) ?? "."
        self.displayDir = last.isEmpty ? "." : last
        self.limits = limits
        self.version = version
        self.logBox = LogBox(log)
        var out: OpaquePointer?
        let rc = sl_engine_new(udfDir, displayDir, Int64(limits.memoryBytes), Int64(limits.instructions),
                               Int64(version), logThunk, Unmanaged.passUnretained(logBox).toOpaque(), &out)
        guard let out else {
            throw LuaLoadError(module: "", file: udfDir, message: "cannot create a Lua state")
        }
        if rc != SL_OK {
            var n = 0
            let msg = bytesToString(sl_error(out, &n), n)
            sl_engine_free(out)
            throw LuaLoadError(module: "", file: udfDir, message: "cannot create the Lua state: \(msg)")
        }
        engine = out
    }

    deinit { sl_engine_free(engine) }

    // MARK: loading

    /// The function `name` of module `module` (`udfDir/module.lua`, dots are subdirectories),
    /// loading the module in the sandbox on first use (cached per engine).
    public func function(module: String, name: String) throws(LuaLoadError) -> LuaFunctionID {
        let cacheKey = module + "\u{0}" + name
        if let id = functionCache[cacheKey] { return id }
        var id: Int32 = 0
        let rc = sl_function(engine, module, name, &id)
        let rel = module.split(separator: ".", omittingEmptySubsequences: false).joined(separator: "/") + ".lua"
        let file = displayDir + "/" + rel
        if rc != SL_OK {
            throw loadError(module: module, file: file, path: udfDir + "/" + rel)
        }
        let fid = LuaFunctionID(rawValue: id)
        functionCache[cacheKey] = fid
        return fid
    }

    /// Compiles an inline expression as `return function(event, ctx) return (<source>) end`.
    /// `label` names it in messages (e.g. `transform 'plays_only'`).
    /// Compiles an inline expression. `label` names it in every message about it — pass the spec's
    /// `file:line:col` of the expression: errors then read `LABEL: message` (no Lua chunk line).
    public func expression(_ source: String, label: String) throws(LuaLoadError) -> LuaFunctionID {
        var id: Int32 = 0
        var src = source
        let chunk = expressionSites.add(source: source, label: label)
        let rc = src.withUTF8 { u in
            u.withMemoryRebound(to: CChar.self) { sl_expression(engine, $0.baseAddress, $0.count, chunk, &id) }
        }
        if rc != SL_OK {
            var n = 0
            let msg = expressionSites.relabel(bytesToString(sl_error(engine, &n), n))
            var rest = msg.hasPrefix(label) ? msg.dropFirst(label.count) : Substring(msg)
            if rest.hasPrefix(": ") { rest = rest.dropFirst(2) }
            throw LuaLoadError(module: label, file: label, path: nil, line: nil, message: String(rest))
        }
        return LuaFunctionID(rawValue: id)
    }

    private func loadError(module: String, file: String, path: String?) -> LuaLoadError {
        var n = 0
        let msg = bytesToString(sl_error(engine, &n), n)
        // "udfs/x.lua:12: message" (the location may be another file, for nested requires)
        if let (f, line, rest) = Self.splitLocation(msg) {
            let samePath = f == file ? path : nil
            return LuaLoadError(module: module, file: f, path: samePath, line: line, message: rest)
        }
        return LuaLoadError(module: module, file: file, path: path, line: nil, message: msg)
    }

    /// Splits `file:line: rest`.
    static func splitLocation(_ msg: String) -> (String, Int, String)? {
        let u = Array(msg.utf8)
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: ":") {
                var j = i + 1
                while j < u.count, u[j] >= 0x30, u[j] <= 0x39 { j += 1 }
                if j > i + 1, j + 1 < u.count, u[j] == UInt8(ascii: ":"), u[j + 1] == UInt8(ascii: " "), i > 0 {
                    let file = String(decoding: u[0..<i], as: UTF8.self)
                    let line = Int(String(decoding: u[(i + 1)..<j], as: UTF8.self)) ?? 0
                    let rest = String(decoding: u[(j + 2)...], as: UTF8.self)
                    return (file, line, rest)
                }
            }
            if u[i] == UInt8(ascii: " ") || u[i] == UInt8(ascii: "\n") { return nil }
            i += 1
        }
        return nil
    }

    // MARK: events

    /// Decodes a JSON value (the runtime sends objects) into a Lua table held by the engine.
    public func decodeJSON(_ bytes: UnsafeRawBufferPointer) -> Result<LuaEventHandle, LuaFailure> {
        var h: Int32 = 0
        let rc = sl_decode(engine, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, 0, &h)
        if rc != SL_OK { return .failure(failure(rc)) }
        return .success(LuaEventHandle(rawValue: h))
    }

    /// Decodes a JSON object with only `fields` in its table (the whole event is still validated);
    /// `nil` decodes everything. For UDFs whose reads `fieldsRead(by:)` found.
    public func decodeJSON(_ bytes: UnsafeRawBufferPointer, fields: LuaFieldSet?) -> Result<LuaEventHandle, LuaFailure> {
        guard let fields else { return decodeJSON(bytes) }
        var h: Int32 = 0
        let rc = sl_decode_fields(engine, fields.raw, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, &h)
        if rc != SL_OK { return .failure(failure(rc)) }
        return .success(LuaEventHandle(rawValue: h))
    }

    /// The fields of its event `fn` reads, from the source it was loaded from (`LuaFieldAccess`);
    /// nil when it may use the event in any other way.
    public func fieldsRead(by fn: LuaFunctionID) -> [[String]]? {
        var src: UnsafePointer<CChar>?
        var len = 0
        var first: Int32 = 0, last: Int32 = 0
        guard sl_function_source(engine, fn.rawValue, &src, &len, &first, &last) == SL_OK, let src else { return nil }
        let text = String(decoding: UnsafeRawBufferPointer(start: src, count: len), as: UTF8.self)
        return LuaFieldAccess.fields(source: text, firstLine: Int(first), lastLine: Int(last))
    }

    /// Decodes a JSON value from an array.
    public func decodeJSON(_ bytes: [UInt8]) -> Result<LuaEventHandle, LuaFailure> {
        bytes.withUnsafeBytes { decodeJSON($0) }
    }

    /// Holds a text event as a Lua string. Only fails when the state is out of memory (then the
    /// engine is poisoned); the returned handle is then not live and every use of it fails.
    public func decodeText(_ bytes: UnsafeRawBufferPointer) -> LuaEventHandle {
        var h: Int32 = 0
        _ = sl_decode(engine, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, 1, &h)
        return LuaEventHandle(rawValue: h)
    }

    /// Holds a text event from an array.
    public func decodeText(_ bytes: [UInt8]) -> LuaEventHandle {
        bytes.withUnsafeBytes { decodeText($0) }
    }

    /// Appends the event as compact JSON (object keys sorted bytewise) to `out`.
    public func encodeJSON(_ h: LuaEventHandle, into out: inout [UInt8]) -> Result<Void, LuaFailure> {
        encode(h, text: 0, into: &out)
    }

    /// Appends a text event: a string as its raw bytes, anything else as JSON.
    public func encodeText(_ h: LuaEventHandle, into out: inout [UInt8]) -> Result<Void, LuaFailure> {
        encode(h, text: 1, into: &out)
    }

    @inline(__always)
    private func encode(_ h: LuaEventHandle, text: Int32, into out: inout [UInt8]) -> Result<Void, LuaFailure> {
        var p: UnsafePointer<UInt8>?
        var n = 0
        let rc = sl_encode(engine, h.rawValue, text, &p, &n)
        if rc != SL_OK { return .failure(failure(rc)) }
        if let p, n > 0 { out.append(contentsOf: UnsafeBufferPointer(start: p, count: n)) }
        return .success(())
    }

    /// A deep copy in a new handle, for fan-out to several consumers that may mutate it.
    /// Metatables (array marks) and remembered input nulls are kept. If the copy fails (out of
    /// memory, nesting deeper than 128 or a cycle), the returned handle is not live and every use
    /// of it fails; `tryCopy` gives the reason.
    public func copy(_ h: LuaEventHandle) -> LuaEventHandle {
        (try? tryCopy(h).get()) ?? LuaEventHandle(rawValue: 0)
    }

    /// A deep copy in a new handle, or why it could not be made.
    public func tryCopy(_ h: LuaEventHandle) -> Result<LuaEventHandle, LuaFailure> {
        var out: Int32 = 0
        let rc = sl_copy(engine, h.rawValue, &out)
        if rc != SL_OK { return .failure(failure(rc)) }
        return .success(LuaEventHandle(rawValue: out))
    }

    /// Frees the handle's slot; the table is garbage once nothing else refers to it.
    /// Releasing twice is harmless.
    public func release(_ h: LuaEventHandle) {
        sl_release(engine, h.rawValue)
    }

    /// Handles currently live (decoded, copied or produced and not yet released).
    public var liveHandles: Int { Int(sl_live_handles(engine)) }

    // MARK: calls

    /// Runs a filter / `when` function: the result's Lua truthiness.
    public func test(_ f: LuaFunctionID, _ h: LuaEventHandle, meta: EventMeta?) -> Result<Bool, LuaFailure> {
        var truthy: Int32 = 0
        var outs: UnsafePointer<Int32>?
        var n = 0
        let rc = withMeta(meta) { sl_call(engine, f.rawValue, h.rawValue, $0, Int32(SL_MODE_TEST), &truthy, &outs, &n) }
        if rc != SL_OK { return .failure(failure(rc)) }
        return .success(truthy != 0)
    }

    /// Runs a map function: appends the returned event (nil = none), then every event passed to
    /// `ctx.emit`, in order, as new handles. The input handle stays owned by the caller.
    public func map(_ f: LuaFunctionID, _ h: LuaEventHandle, meta: EventMeta?,
                    into out: inout [LuaEventHandle]) -> Result<Void, LuaFailure> {
        call(f, h, meta: meta, mode: Int32(SL_MODE_MAP), into: &out)
    }

    /// Runs a flat_map function: appends the events of the returned list (nil = none), then every
    /// event passed to `ctx.emit`, as new handles.
    public func flatMap(_ f: LuaFunctionID, _ h: LuaEventHandle, meta: EventMeta?,
                        into out: inout [LuaEventHandle]) -> Result<Void, LuaFailure> {
        call(f, h, meta: meta, mode: Int32(SL_MODE_FLATMAP), into: &out)
    }

    private func call(_ f: LuaFunctionID, _ h: LuaEventHandle, meta: EventMeta?, mode: Int32,
                      into out: inout [LuaEventHandle]) -> Result<Void, LuaFailure> {
        var truthy: Int32 = 0
        var outs: UnsafePointer<Int32>?
        var n = 0
        let rc = withMeta(meta) { sl_call(engine, f.rawValue, h.rawValue, $0, mode, &truthy, &outs, &n) }
        if rc != SL_OK { return .failure(failure(rc)) }
        if let outs {
            for i in 0..<n { out.append(LuaEventHandle(rawValue: outs[i])) }
        }
        return .success(())
    }

    /// Lays the metadata out in reusable buffers for the C side (no allocation once warm).
    @inline(__always)
    func withMeta(_ meta: EventMeta?, _ body: (UnsafePointer<sl_meta>?) -> Int32) -> Int32 {
        guard let m = meta else { return body(nil) }
        metaBlob.removeAll(keepingCapacity: true)
        metaHeaders.removeAll(keepingCapacity: true)
        var cm = sl_meta()
        if let k = m.key {
            cm.has_key = 1; cm.key_off = metaBlob.count; cm.key_len = k.count
            metaBlob.append(contentsOf: k)
        }
        if let t = m.timestamp { cm.has_timestamp = 1; cm.timestamp = t }
        if let t = m.topic {
            cm.has_topic = 1; cm.topic_off = metaBlob.count
            metaBlob.append(contentsOf: t.utf8)
            cm.topic_len = metaBlob.count - cm.topic_off
        }
        if let p = m.partition { cm.has_partition = 1; cm.partition = Int64(p) }
        if let o = m.offset { cm.has_offset = 1; cm.offset = o }
        for hd in m.headers {
            let no = metaBlob.count
            metaBlob.append(contentsOf: hd.name.utf8)
            let vo = metaBlob.count
            metaBlob.append(contentsOf: hd.value)
            metaHeaders.append(contentsOf: [no, vo - no, vo, metaBlob.count - vo])
        }
        cm.n_headers = m.headers.count
        return metaBlob.withUnsafeBufferPointer { blob in
            metaHeaders.withUnsafeBufferPointer { hdr in
                cm.blob = blob.baseAddress
                cm.headers = hdr.baseAddress
                return withUnsafePointer(to: &cm) { body($0) }
            }
        }
    }

    func failure(_ rc: Int32) -> LuaFailure {
        var n = 0
        let msg = bytesToString(sl_error(engine, &n), n)
        var tn = 0
        let tb = sl_traceback(engine, &tn)
        let kind: LuaFailure.Kind
        switch rc {
        case Int32(SL_INSTRUCTIONS): kind = .instructionLimit
        case Int32(SL_MEMORY): kind = .memoryLimit
        case Int32(SL_BAD_RETURN): kind = .badReturn
        case Int32(SL_ENCODE): kind = .encode
        case Int32(SL_DECODE): kind = .decode
        default: kind = .runtime
        }
        let trace = (kind == .runtime && tb != nil) ? expressionSites.relabel(bytesToString(tb, tn)) : nil
        return LuaFailure(kind: kind, message: expressionSites.relabel(msg), traceback: trace)
    }

    // MARK: state

    /// True once the state went over its memory limit: drop this engine and build a new one.
    public var isPoisoned: Bool { sl_poisoned(engine) != 0 }

    /// Bytes the Lua state holds now.
    public var memoryInUse: Int { Int(sl_memory(engine)) }

    /// The `ctx.count(metric, n)` totals accumulated since the last call, then cleared.
    public func takeCounters() -> [(String, Int64)] {
        var result: [(String, Int64)] = []
        withUnsafeMutablePointer(to: &result) { sl_take_counters(engine, counterThunk, $0) }
        return result
    }
}
