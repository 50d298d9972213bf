import SluiceCore
import SluiceSpec

/// `dedup`: the first event of a key passes at once; a later event of the key whose time is within
/// `within` of the kept event's time is dropped (counted as deduplicated). A key's state is
/// evicted once the watermark passes kept.time + within (up to `within / 16` later: the answers
/// do not depend on when, see `EvictionBuckets`). An event further away than `within` passes and,
/// if later, becomes the kept one.
struct DedupOperator: KeyedOperatorBehaviour {
    private let within: Int64
    private let budget: StateBudget
    private var kept: [StateKey: Int64] = [:]
    private var timers: EvictionBuckets<StateKey>
    private var stateBytes = 0
    private var watermark = EventTime.missing

    init(spec: DedupSpec, budget: StateBudget) {
        self.within = spec.within
        self.budget = budget
        self.timers = EvictionBuckets(width: spec.within / 16)
    }

    var gauges: OperatorGaugeValues {
        OperatorGaugeValues(keys: kept.count, stateBytes: stateBytes, held: 0, timers: timers.count, watermark: watermark)
    }

    mutating func process(_ e: KeyedEvent, _ ctx: inout OperatorContext) {
        if let k = kept[e.key] {
            if abs(e.time &- k) <= within {
                ctx.deduplicated += 1
                return
            }
            ctx.emit(e.bytes, time: e.time, meta: e.meta)
            if e.time > k {
                kept[e.key] = e.time
                timers.add(e.key, at: e.time &+ within &+ 1)
            }
            return
        }
        let size = e.key.bytes.count + StateBudget.overhead
        guard budget.admits(keys: kept.count, bytes: stateBytes, newKey: true, adding: size) else {
            ctx.stateFull += 1
            ctx.deadLetter(e, reason: "state_full", detail: "dedup '\(ctx.name)' holds \(kept.count) keys on this worker, its 'state' limit")
            return
        }
        kept[e.key] = e.time
        stateBytes += size
        timers.add(e.key, at: e.time &+ within &+ 1)
        ctx.emit(e.bytes, time: e.time, meta: e.meta)
    }

    mutating func advance(to w: Int64, _ ctx: inout OperatorContext) {
        watermark = w
        while let due = timers.popDue(w) {
            for key in due {
                guard let k = kept[key], k &+ within &+ 1 <= w else { continue }   // a newer kept event re-armed it
                kept[key] = nil
                stateBytes -= key.bytes.count + StateBudget.overhead
            }
        }
    }
}

extension DedupOperator {
    func snapshot(into w: inout StateWriter) {
        w.bytes.reserveCapacity(w.bytes.count + stateBytes + 64)
        w.i64(watermark)
        w.count(kept.count)
        for (k, t) in kept { w.data(k.bytes); w.i64(t) }
    }

    func forEachKey(_ body: (StateKey) -> Void) { for k in kept.keys { body(k) } }

    /// Each key's state alone, in the format of `snapshot` (read back by `restore`): a changelog record.
    func snapshotEachKey(_ body: (StateKey, [UInt8]) -> Void) {
        for (k, t) in kept {
            var w = StateWriter()
            w.i64(EventTime.missing); w.count(1); w.data(k.bytes); w.i64(t)   // no watermark: the record changes only with the key
            body(k, w.bytes)
        }
    }

    mutating func restore(from r: inout StateReader, keep: (StateKey) -> Bool) throws(CheckpointError) {
        watermark = max(watermark, try r.i64())
        let n = try r.count(minItemBytes: 12)
        for _ in 0..<n {
            let key = StateKey(try r.data())
            let t = try r.i64()
            guard keep(key), kept[key] == nil else { continue }
            kept[key] = t
            stateBytes += key.bytes.count + StateBudget.overhead
            timers.add(key, at: t &+ within &+ 1)
        }
    }
}
