import CSluiceLua
import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// What answers `ctx.lookup(name, key)`: the row's JSON bytes, shared read-only between workers.
/// Called on the worker's thread in the middle of a UDF call.
public protocol LuaLookupProvider: Sendable {
    /// The row under `key` (keys are strings; Lua numbers arrive as their integer text),
    /// `.miss` for an unknown key, `.noTable` when there is no lookup `name`. With `canSuspend`
    /// the provider may answer `.pending(token)` (the call is suspended and resumed with the
    /// answer later); without it, it must answer now (waiting if it has to).
    func lookupRow(table: String, key: String, canSuspend: Bool) -> LuaLookupAnswer
}

/// The answer of a `LuaLookupProvider`.
public enum LuaLookupAnswer: Sendable, Equatable {
    case row([UInt8])
    case miss
    case noTable
    /// The answer comes later, under this token (only when the call can suspend).
    case pending(Int64)
    /// The lookup failed: `ctx.lookup` raises this message (`on_error: dead_letter`).
    case failed(String)
}

private final class LookupBox {
    let provider: any LuaLookupProvider
    init(_ provider: any LuaLookupProvider) { self.provider = provider }
}

private func mallocCopy(_ bytes: [UInt8], _ outLen: UnsafeMutablePointer<Int>?) -> UnsafeMutablePointer<UInt8>? {
    guard let p = malloc(max(bytes.count, 1)) else { return nil }
    bytes.withUnsafeBytes { if let base = $0.baseAddress { memcpy(p, base, $0.count) } }
    outLen?.pointee = bytes.count
    return p.assumingMemoryBound(to: UInt8.self)
}

/// The C callback: never raises; returns malloc'd bytes (freed by the engine) or NULL.
private let lookupThunk: sl_lookup_fn = { ctx, name, nameLen, key, keyLen, canSuspend, outLen, status, token in
    guard let ctx else { return nil }
    let box = Unmanaged<LookupBox>.fromOpaque(ctx).takeUnretainedValue()
    let table = name.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: nameLen), as: UTF8.self) } ?? ""
    let k = key.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: keyLen), as: UTF8.self) } ?? ""
    switch box.provider.lookupRow(table: table, key: k, canSuspend: canSuspend != 0) {
    case .noTable:
        status?.pointee = Int32(SL_LOOKUP_UNKNOWN)
        return nil
    case .miss:
        return nil
    case .row(let bytes):
        return mallocCopy(bytes, outLen)
    case .pending(let t):
        status?.pointee = Int32(SL_LOOKUP_PENDING)
        token?.pointee = t
        return nil
    case .failed(let message):
        status?.pointee = Int32(SL_LOOKUP_FAILED)
        return mallocCopy(Array(message.utf8), outLen)
    }
}

/// A UDF call that can be suspended by `ctx.lookup` (`LuaEngine.start`).
public enum LuaCallMode: Sendable {
    case test, map, flatMap

    var raw: Int32 {
        switch self {
        case .test: Int32(SL_MODE_TEST)
        case .map: Int32(SL_MODE_MAP)
        case .flatMap: Int32(SL_MODE_FLATMAP)
        }
    }
}

/// Where a suspendable call stands after `start` or `resume`.
public enum LuaCallProgress: Sendable, Equatable {
    /// Finished: `truthy` (a test) or the outputs were filled in.
    case done
    /// Waiting for the answer to the lookup under `token`; resume `call` with it.
    case suspended(call: Int32, token: Int64)
}

/// The answer a suspended `ctx.lookup` resumes with.
public enum LuaResumeAnswer: Sendable {
    case row([UInt8])
    case none
    case failed(String)
}

extension LuaEngine {
    /// Makes `ctx.lookup(name, key)` answer from `provider` (a table decoded from the row's JSON, or nil).
    /// Without a provider `ctx.lookup` raises "the pipeline has no lookups".
    public func setLookups(_ provider: any LuaLookupProvider) {
        let box = LookupBox(provider)
        lookupBox = box
        sl_set_lookup(engine, lookupThunk, Unmanaged.passUnretained(box).toOpaque())
    }

    /// Runs a filter / map / flat_map function as a coroutine that `ctx.lookup` may suspend. Outputs as
    /// for `test` / `map` / `flatMap` once `.done`; the input handle must stay live until then.
    public func start(_ f: LuaFunctionID, _ h: LuaEventHandle, meta: EventMeta?, mode: LuaCallMode,
                      truthy: inout Bool, into out: inout [LuaEventHandle]) -> Result<LuaCallProgress, LuaFailure> {
        var t: Int32 = 0
        var outs: UnsafePointer<Int32>?
        var n = 0
        var call: Int32 = 0
        var token: Int64 = 0
        let rc = withMeta(meta) { sl_call_start(engine, f.rawValue, h.rawValue, $0, mode.raw, &t, &outs, &n, &call, &token) }
        return settle(rc, t, outs, n, call: call, token: token, truthy: &truthy, into: &out)
    }

    /// Resumes a suspended call with its lookup's answer.
    public func resume(_ call: Int32, with answer: LuaResumeAnswer, meta: EventMeta?,
                       truthy: inout Bool, into out: inout [LuaEventHandle]) -> Result<LuaCallProgress, LuaFailure> {
        var t: Int32 = 0
        var outs: UnsafePointer<Int32>?
        var n = 0
        var token: Int64 = 0
        let kind: Int32
        let bytes: [UInt8]
        switch answer {
        case .row(let b): kind = Int32(SL_ANSWER_ROW); bytes = b
        case .none: kind = Int32(SL_ANSWER_NIL); bytes = []
        case .failed(let m): kind = Int32(SL_ANSWER_FAILED); bytes = Array(m.utf8)
        }
        let rc = bytes.withUnsafeBufferPointer { b in
            withMeta(meta) { sl_call_resume(engine, call, kind, b.baseAddress, b.count, $0, &t, &outs, &n, &token) }
        }
        return settle(rc, t, outs, n, call: call, token: token, truthy: &truthy, into: &out)
    }

    /// Drops a suspended call (its event is given up by the caller).
    public func abandon(_ call: Int32) { sl_call_abandon(engine, call) }

    /// Calls suspended now.
    public var suspendedCalls: Int { Int(sl_suspended_calls(engine)) }

    private func settle(_ rc: Int32, _ t: Int32, _ outs: UnsafePointer<Int32>?, _ n: Int, call: Int32, token: Int64,
                        truthy: inout Bool, into out: inout [LuaEventHandle]) -> Result<LuaCallProgress, LuaFailure> {
        if rc == Int32(SL_SUSPENDED) { return .success(.suspended(call: call, token: token)) }
        if rc != SL_OK { return .failure(failure(rc)) }
        truthy = t != 0
        if let outs { for i in 0..<n { out.append(LuaEventHandle(rawValue: outs[i])) } }
        return .success(.done)
    }
}

extension LuaLookupProvider {
    /// A lookup that must be answered now.
    public func lookupRow(table: String, key: String) -> LuaLookupAnswer { lookupRow(table: table, key: key, canSuspend: false) }
}
