import SluiceCore
import SluiceLua

/// What a stateful operator may do while it handles one message: emit results, dead-letter
/// events, call its Lua function. Valid for one message only (like Flink's `Context`).
struct OperatorContext {
    let name: String
    let worker: Worker
    var outputs: [OperatorOutput] = []
    var deadLetters: [DeadLetter] = []
    /// Events dropped as duplicates (dedup).
    var deduplicated = 0
    var late = 0
    var stateFull = 0

    init(name: String, worker: Worker) { self.name = name; self.worker = worker }

    mutating func emit(_ bytes: [UInt8], time: Int64, meta: EventMeta? = nil) {
        outputs.append(OperatorOutput(bytes: bytes, time: time, meta: meta))
    }

    mutating func deadLetter(_ e: KeyedEvent, reason: String, detail: String? = nil) {
        deadLetters.append(DeadLetter(component: name, reason: reason, detail: detail, source: name,
                                      event: Event(bytes: e.bytes, meta: e.meta, position: e.position)))
    }

    mutating func deadLetter(bytes: [UInt8], reason: String, detail: String? = nil) {
        deadLetters.append(DeadLetter(component: name, reason: reason, detail: detail, source: name, event: Event(bytes: bytes)))
    }

    /// Calls a keyed UDF: `args` are JSON events (nil = Lua nil; a list = a Lua list of events),
    /// `state` the key's ctx.state as JSON (nil = empty). Returns the encoded results and the new
    /// ctx.state (nil when empty), or the failure.
    mutating func call(_ ref: LuaRef, args: [KeyedArg], state: [UInt8]?, mode: LuaEngine.KeyedMode)
        -> Result<(outputs: [[UInt8]], state: [UInt8]?), LuaFailure> {
        guard let engine = worker.luaEngine, let fn = worker.function(ref) else {
            return .failure(LuaFailure(kind: .runtime, message: "the Lua engine is not available"))
        }
        var handles: [LuaEventHandle] = []
        defer {
            for h in handles { engine.release(h) }
            worker.recoverFromPoison()
        }
        func decode(_ b: [UInt8]) -> Result<LuaEventHandle, LuaFailure> {
            let r = engine.decodeJSON(b)
            if case .success(let h) = r { handles.append(h) }
            return r
        }
        var lua: [LuaEventHandle?] = []
        for a in args {
            switch a {
            case .nil: lua.append(nil)
            case .event(let b):
                switch decode(b) {
                case .success(let h): lua.append(h)
                case .failure(let f): return .failure(f)
                }
            case .list(let items):
                var hs: [LuaEventHandle] = []
                for b in items {
                    switch decode(b) {
                    case .success(let h): hs.append(h)
                    case .failure(let f): return .failure(f)
                    }
                }
                switch engine.list(hs) {
                case .success(let h): handles.append(h); lua.append(h)
                case .failure(let f): return .failure(f)
                }
            }
        }
        let stateHandle: LuaEventHandle
        switch state.map({ decode($0) }) ?? engine.newTable() {
        case .success(let h): stateHandle = h; handles.append(h)
        case .failure(let f): return .failure(f)
        }
        var outs: [LuaEventHandle] = []
        let result = engine.callKeyed(fn, args: lua, state: stateHandle, mode: mode, into: &outs)
        handles.append(contentsOf: outs)
        if case .failure(let f) = result { return .failure(f) }
        var encoded: [[UInt8]] = []
        for o in outs {
            var bytes: [UInt8] = []
            if case .failure(let f) = engine.encodeJSON(o, into: &bytes) { return .failure(f) }
            encoded.append(bytes)
        }
        var newState: [UInt8]? = nil
        if !engine.isEmptyTable(stateHandle) {
            var bytes: [UInt8] = []
            if case .failure(let f) = engine.encodeJSON(stateHandle, into: &bytes) { return .failure(f) }
            newState = bytes
        }
        return .success((encoded, newState))
    }
}

/// An argument of a keyed UDF call.
enum KeyedArg {
    case `nil`
    case event([UInt8])
    case list([[UInt8]])
}

/// State sizes and limits of one stage worker's operator, shared for `/metrics`.
struct OperatorGaugeValues: Sendable, Equatable {
    var keys = 0
    var stateBytes = 0
    var held = 0
    var timers = 0
    var watermark = EventTime.missing
}

/// The behaviour of a stateful transform, owned by one stage worker (no locks): it keeps the
/// state of the keys that hash to this worker and reacts to events and to watermark advances.
protocol KeyedOperatorBehaviour: Sendable {
    mutating func process(_ event: KeyedEvent, _ ctx: inout OperatorContext)
    /// The operator's watermark moved to `watermark`: fire every timer due, in time order.
    mutating func advance(to watermark: Int64, _ ctx: inout OperatorContext)
    var gauges: OperatorGaugeValues { get }
    /// Writes every key's state (held events, `ctx.state`, windows) for a checkpoint. Timers are
    /// not written: they follow from the state and are re-armed by `restore`.
    func snapshot(into w: inout StateWriter)
    /// Adds the keys of one checkpointed worker's state for which `keep` is true (keys are
    /// re-routed, so the number of workers may differ from the checkpointed run's).
    mutating func restore(from r: inout StateReader, keep: (StateKey) -> Bool) throws(CheckpointError)
    /// Calls `body` with every key held.
    func forEachKey(_ body: (StateKey) -> Void)
    /// Calls `body` with every key and that key's state alone, encoded as `snapshot` would with only
    /// that key (so `restore` reads it back): the value of the key's changelog record.
    func snapshotEachKey(_ body: (StateKey, [UInt8]) -> Void)
}

/// `state: { max_keys, max_bytes }` for one worker (the operator's limits split over its workers).
struct StateBudget {
    var maxKeys: Int
    var maxBytes: Int
    init(_ limits: SluiceSpec.StateLimits, lanes: Int) {
        maxKeys = limits.maxKeys.map { max(1, $0 / max(1, lanes)) } ?? Int.max
        maxBytes = limits.maxBytes.map { max(1, $0 / max(1, lanes)) } ?? Int.max
    }
    /// Bytes counted per entry beyond its payload (key, bookkeeping).
    static let overhead = 48
    func admits(keys: Int, bytes: Int, newKey: Bool, adding: Int) -> Bool {
        (!newKey || keys < maxKeys) && bytes + adding <= maxBytes
    }
}

import SluiceSpec
