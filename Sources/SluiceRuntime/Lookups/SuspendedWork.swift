import SluiceCore
import SluiceLua
import SluiceSpec

/// What runs once a suspended call finishes.
enum AfterSuspension: Sendable {
    /// A map / flat_map: walk its outputs on from `node`.
    case outputs(node: Int)
    /// A Lua filter: on a pass, walk the event on from `node`.
    case filter(node: Int)
    /// A sink's Lua `when`: on a pass, deliver the event to `sink`.
    case when(sink: Int)
}

/// The per-event state a suspended call resumes with.
struct SuspensionContext {
    var current: Event
    var time: Int64
    var watermarkBefore: Int64
    var source: Int
    var format: DataFormat
}

/// A result held back so that a batch's results are published in input order.
enum DeferredEffect {
    case sink(Int, [UInt8], EventMeta?)
    case dead(DeadLetter)
    case route(Int, Int, [UInt8], SuspensionContext)
}

/// A worker's UDF calls suspended by HTTP lookups within one batch: the calls by token, how many
/// each event still waits for, the Lua handles its walk made (kept until its last call finishes),
/// and the results of every event from the first suspended one on, published in input order at
/// the end of the batch.
struct SuspendedWork<Value> {
    struct Call {
        var call: Int32
        let event: Int
        let then: AfterSuspension
        let value: Value
        let component: String
        let context: SuspensionContext
    }

    private var calls: [Int64: Call] = [:]
    private var waiting: [Int: Int] = [:]
    private var kept: [Int: [LuaEventHandle]] = [:]
    private var effects: [Int: [DeferredEffect]] = [:]
    private var firstSuspended: Int?

    /// Some call of this batch was suspended (results are being deferred).
    var active: Bool { firstSuspended != nil }
    var hasCalls: Bool { !calls.isEmpty }

    mutating func park(_ token: Int64, _ call: Call) {
        calls[token] = call
        waiting[call.event, default: 0] += 1
        if firstSuspended.map({ call.event < $0 }) ?? true { firstSuspended = call.event }
    }

    mutating func take(_ token: Int64) -> Call? { calls.removeValue(forKey: token) }

    /// Results of this event wait for the events before it.
    func deferring(_ event: Int) -> Bool { firstSuspended.map { event >= $0 } ?? false }

    func isWaiting(_ event: Int) -> Bool { firstSuspended != nil && (waiting[event] ?? 0) > 0 }

    mutating func keep(_ handles: [LuaEventHandle], for event: Int) {
        if !handles.isEmpty { kept[event, default: []].append(contentsOf: handles) }
    }

    /// One call of `event` finished (it may have parked another meanwhile).
    mutating func finished(_ event: Int) { waiting[event, default: 1] -= 1 }

    /// The handles to free once `event` waits for nothing more (nil while it still does).
    mutating func release(_ event: Int) -> [LuaEventHandle]? {
        guard (waiting[event] ?? 0) <= 0 else { return nil }
        waiting[event] = nil
        return kept.removeValue(forKey: event) ?? []
    }

    mutating func postpone(_ effect: DeferredEffect, for event: Int) { effects[event, default: []].append(effect) }

    /// The deferred results in input order.
    mutating func drainEffects() -> [DeferredEffect] {
        let out = effects.keys.sorted().flatMap { effects[$0]! }
        effects.removeAll()
        return out
    }

    /// Every suspended call, in event order, forgetting them and their handles (their engine is gone).
    mutating func abandonAll() -> [Call] {
        let all = calls.values.sorted { $0.event < $1.event }
        calls.removeAll()
        waiting.removeAll()
        kept.removeAll()
        return all
    }

    mutating func reset() {
        calls.removeAll(); waiting.removeAll(); kept.removeAll(); effects.removeAll()
        firstSuspended = nil
    }
}
