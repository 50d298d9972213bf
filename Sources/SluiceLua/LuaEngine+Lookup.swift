import CSluiceLua
#if canImport(Glibc)
import Glibc
#endif

/// What answers `ctx.lookup(name, key)`: the row's JSON bytes, shared read-only between workers.
/// Called on the worker's thread in the middle of a UDF call, so it must not block.
public protocol LuaLookupProvider: Sendable {
    /// The row under `key` (keys are strings; Lua numbers arrive as their integer text),
    /// `.miss` for an unknown key, `.noTable` when there is no lookup `name`.
    func lookupRow(table: String, key: String) -> LuaLookupAnswer
}

/// The answer of a `LuaLookupProvider`.
public enum LuaLookupAnswer: Sendable {
    case row([UInt8])
    case miss
    case noTable
}

private final class LookupBox {
    let provider: any LuaLookupProvider
    init(_ provider: any LuaLookupProvider) { self.provider = provider }
}

/// The C callback: never raises; returns malloc'd bytes (freed by the engine) or NULL.
private let lookupThunk: sl_lookup_fn = { ctx, name, nameLen, key, keyLen, outLen, status in
    guard let ctx else { return nil }
    let box = Unmanaged<LookupBox>.fromOpaque(ctx).takeUnretainedValue()
    let table = name.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: nameLen), as: UTF8.self) } ?? ""
    let k = key.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: keyLen), as: UTF8.self) } ?? ""
    switch box.provider.lookupRow(table: table, key: k) {
    case .noTable:
        status?.pointee = Int32(SL_LOOKUP_UNKNOWN)
        return nil
    case .miss:
        return nil
    case .row(let bytes):
        guard let p = malloc(max(bytes.count, 1)) else { return nil }
        bytes.withUnsafeBytes { if let base = $0.baseAddress { memcpy(p, base, $0.count) } }
        outLen?.pointee = bytes.count
        return p.assumingMemoryBound(to: UInt8.self)
    }
}

extension LuaEngine {
    /// Makes `ctx.lookup(name, key)` answer from `provider` (a table decoded from the row's JSON, or nil).
    /// Without a provider `ctx.lookup` raises "the pipeline has no lookups".
    public func setLookups(_ provider: any LuaLookupProvider) {
        let box = LookupBox(provider)
        lookupBox = box
        sl_set_lookup(engine, lookupThunk, Unmanaged.passUnretained(box).toOpaque())
    }
}
