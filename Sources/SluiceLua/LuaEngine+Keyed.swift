import CSluiceLua
import SluiceCore

/// Calls for keyed transforms: a join's `merge(lefts, right, ctx)` and an aggregate's
/// `reduce(state, event, ctx)`, with `ctx.state` bound to the key's own table during the call.
extension LuaEngine {
    public enum KeyedMode: Sendable {
        /// The result is nil, one event or a list of events.
        case merge
        /// The result is the new state table.
        case reduce
    }

    /// Calls `f` with `args` (nil entries are Lua nil) and `ctx.state` = `state`; appends the
    /// outputs (and events passed to `ctx.emit`) as new handles.
    public func callKeyed(_ f: LuaFunctionID, args: [LuaEventHandle?], state: LuaEventHandle?, meta: EventMeta? = nil,
                          mode: KeyedMode, into out: inout [LuaEventHandle]) -> Result<Void, LuaFailure> {
        let raw = args.map { $0?.rawValue ?? Int32(SL_NIL_HANDLE) }
        var outs: UnsafePointer<Int32>?
        var n = 0
        let m = mode == .merge ? Int32(SL_MODE_MERGE) : Int32(SL_MODE_REDUCE)
        let rc = raw.withUnsafeBufferPointer { a in
            withMeta(meta) { sl_call_keyed(cEngine, f.rawValue, a.baseAddress, a.count, state?.rawValue ?? 0, $0, m, &outs, &n) }
        }
        if rc != SL_OK { return .failure(failure(rc)) }
        if let outs {
            for i in 0..<n { out.append(LuaEventHandle(rawValue: outs[i])) }
        }
        return .success(())
    }

    /// A new handle holding a list (JSON array) of the given events.
    public func list(_ handles: [LuaEventHandle]) -> Result<LuaEventHandle, LuaFailure> {
        var out: Int32 = 0
        let raw = handles.map(\.rawValue)
        let rc = raw.withUnsafeBufferPointer { sl_list(cEngine, $0.baseAddress, $0.count, &out) }
        if rc != SL_OK { return .failure(failure(rc)) }
        return .success(LuaEventHandle(rawValue: out))
    }

    /// A new handle holding an empty table.
    public func newTable() -> Result<LuaEventHandle, LuaFailure> {
        var out: Int32 = 0
        let rc = sl_new_table(cEngine, &out)
        if rc != SL_OK { return .failure(failure(rc)) }
        return .success(LuaEventHandle(rawValue: out))
    }

    /// True if the handle holds a table with no entries.
    public func isEmptyTable(_ h: LuaEventHandle) -> Bool { sl_is_empty(cEngine, h.rawValue) != 0 }
}
