import SluiceCore
import SluiceSpec

/// `join`: an interval join on event time (Netflix's co-process joiner, Flink's IntervalJoinOperator).
/// A left L matches a right R of the same key when R.time - within <= L.time <= R.time.
/// - complete: R is held until the watermark passes R.time, then merged once with every match
///   (sorted by time, then arrival).
/// - eager: merged as soon as matches exist; each (L, R) pair is merged exactly once.
/// Lefts are evicted once the watermark passes L.time + within; with `unmatched: emit` a right
/// without matches gives `merge({}, R)` and an evicted, never matched left `merge({L}, nil)`.
/// Held events stay JSON bytes; they enter Lua only for the merge call. A key's state lives in a
/// slot; its timers point at the slot, so firing them needs no hashing. Unless `unmatched: emit`
/// (where an eviction emits), evicting lefts is invisible but for memory: expired lefts are
/// pruned per key in coarse time buckets (`EvictionBuckets`) instead of one heap timer each
/// (matching always checks the interval, so a left kept a little longer never matches wrongly).
struct JoinOperator: KeyedOperatorBehaviour {
    fileprivate struct Held {
        var time: Int64
        var seq: UInt64
        var bytes: [UInt8]
        var matched = false
    }
    fileprivate struct KeyState {
        var key: StateKey
        var lefts: [Held] = []
        var rights: [Held] = []
        var ctxState: [UInt8]?
        var bytes = 0
        /// The latest time a prune of this key's lefts is scheduled for (`EvictionBuckets`).
        var pruneAt = Int64.min
    }

    fileprivate static let fireRight: UInt8 = 0
    fileprivate static let evictLeft: UInt8 = 1

    fileprivate let spec: JoinSpec
    private let merge: LuaRef?
    private let budget: StateBudget
    fileprivate var index: [StateKey: Int32] = [:]
    fileprivate var slots: [KeyState] = []
    private var freeSlots: [Int32] = []
    fileprivate var timers = TimerQueue<Int32>()
    /// Slots whose lefts to prune, when lefts are not evicted by `timers` (see above).
    fileprivate var prunes: EvictionBuckets<Int32>?
    fileprivate var seq: UInt64 = 0
    fileprivate var stateBytes = 0
    fileprivate var held = 0
    fileprivate var watermark = EventTime.missing

    init(spec: JoinSpec, merge: LuaRef?, budget: StateBudget) {
        self.spec = spec; self.merge = merge; self.budget = budget
        if spec.unmatched != .emit { prunes = EvictionBuckets(width: spec.within / 16) }
    }

    var gauges: OperatorGaugeValues {
        OperatorGaugeValues(keys: index.count, stateBytes: stateBytes, held: held, timers: timers.count + (prunes?.count ?? 0), watermark: watermark)
    }

    mutating func process(_ e: KeyedEvent, _ ctx: inout OperatorContext) {
        let existing = index[e.key]
        let size = e.bytes.count + StateBudget.overhead + (existing == nil ? e.key.bytes.count + StateBudget.overhead : 0)
        guard budget.admits(keys: index.count, bytes: stateBytes, newKey: existing == nil, adding: size) else {
            ctx.stateFull += 1
            ctx.deadLetter(e, reason: "state_full", detail: "join '\(ctx.name)' holds \(index.count) keys and \(stateBytes) bytes on this worker, its 'state' limit")
            return
        }
        let s: Int32
        if let existing { s = existing } else {
            if let free = freeSlots.popLast() { s = free; slots[Int(free)] = KeyState(key: e.key) }
            else { s = Int32(slots.count); slots.append(KeyState(key: e.key)) }
            index[e.key] = s
        }
        seq += 1
        var h = Held(time: e.time, seq: seq, bytes: e.bytes)
        let within = spec.within, eager = spec.emit == .eager, merge = merge, w = watermark
        var delta = 0
        if e.input == 0 {
            if eager {
                for i in slots[Int(s)].rights.indices {
                    let r = slots[Int(s)].rights[i]
                    guard r.time - within <= e.time && e.time <= r.time else { continue }
                    slots[Int(s)].rights[i].matched = true
                    h.matched = true
                    delta += Self.emitMerge(merge, watermark: w, lefts: [h.bytes], right: r, state: &slots[Int(s)], &ctx)
                }
            }
            slots[Int(s)].lefts.append(h)
            scheduleEviction(of: h, in: s)
        } else {
            if eager {
                let lefts = slots[Int(s)].lefts
                let matches = lefts.indices.filter { lefts[$0].time >= e.time - within && lefts[$0].time <= e.time }
                if !matches.isEmpty {
                    for i in matches { slots[Int(s)].lefts[i].matched = true }
                    h.matched = true
                    delta += Self.emitMerge(merge, watermark: w, lefts: Self.sorted(matches.map { lefts[$0] }).map(\.bytes),
                                            right: h, state: &slots[Int(s)], &ctx)
                }
            }
            slots[Int(s)].rights.append(h)
            timers.add(at: e.time &+ 1, order: Self.fireRight, key: s, seq: h.seq)
        }
        slots[Int(s)].bytes += size + delta
        stateBytes += size + delta
        held += 1
    }

    mutating func advance(to w: Int64, _ ctx: inout OperatorContext) {
        watermark = w
        let within = spec.within, complete = spec.emit == .complete, emitUnmatched = spec.unmatched == .emit, merge = merge
        while let t = timers.popDue(w) {
            let s = Int(t.key)
            var delta = 0
            var released = 0
            if t.order == Self.fireRight {
                guard let i = slots[s].rights.firstIndex(where: { $0.seq == t.seq }) else { continue }
                let r = slots[s].rights.remove(at: i)
                if complete {
                    var matches: [Held] = []
                    for i in slots[s].lefts.indices {   // in place: no copy of the key's lefts
                        let time = slots[s].lefts[i].time
                        guard time >= r.time - within && time <= r.time else { continue }
                        slots[s].lefts[i].matched = true
                        matches.append(slots[s].lefts[i])
                    }
                    if !matches.isEmpty || emitUnmatched {
                        delta += Self.emitMerge(merge, watermark: w, lefts: Self.sorted(matches).map(\.bytes),
                                                right: r, state: &slots[s], &ctx)
                    }
                } else if !r.matched && emitUnmatched {
                    delta += Self.emitMerge(merge, watermark: w, lefts: [], right: r, state: &slots[s], &ctx)
                }
                released = r.bytes.count + StateBudget.overhead
            } else {
                guard let i = slots[s].lefts.firstIndex(where: { $0.seq == t.seq }) else { continue }
                let l = slots[s].lefts.remove(at: i)
                if !l.matched && emitUnmatched {
                    delta += Self.emitMerge(merge, watermark: w, lefts: [l.bytes], right: nil, state: &slots[s], &ctx, time: l.time)
                }
                released = l.bytes.count + StateBudget.overhead
            }
            held -= 1
            slots[s].bytes += delta - released
            stateBytes += delta - released
            freeIfEmpty(s)
        }
        // After the rights due at `w` have fired: drop the lefts no right can match any more.
        while let due = prunes?.popDue(w) {
            for slot in due {
                let s = Int(slot)
                guard s < slots.count, index[slots[s].key] == slot else { continue }   // a freed slot
                var released = 0, count = 0
                slots[s].lefts.removeAll { l in
                    guard l.time &+ within &+ 1 <= w else { return false }
                    released += l.bytes.count + StateBudget.overhead
                    count += 1
                    return true
                }
                held -= count
                slots[s].bytes -= released
                stateBytes -= released
                freeIfEmpty(s)
            }
        }
    }

    /// Evicts a left at L.time + within: a heap timer with `unmatched: emit` (the eviction emits),
    /// else a prune of its key's lefts in a bucket at or after that time (one per key and bucket).
    private mutating func scheduleEviction(of h: Held, in s: Int32) {
        let at = h.time &+ spec.within &+ 1
        guard prunes != nil else {
            timers.add(at: at, order: Self.evictLeft, key: s, seq: h.seq)
            return
        }
        if at > slots[Int(s)].pruneAt {
            slots[Int(s)].pruneAt = prunes!.add(s, at: at)
        }
    }

    private mutating func freeIfEmpty(_ s: Int) {
        guard slots[s].lefts.isEmpty && slots[s].rights.isEmpty else { return }
        stateBytes -= slots[s].bytes
        index[slots[s].key] = nil
        slots[s] = KeyState(key: StateKey([]))
        freeSlots.append(Int32(s))
    }

    private static func sorted(_ hs: [Held]) -> [Held] {
        hs.sorted { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
    }

    /// One merge: the UDF's results, or `{"left":[...],"right":R}` without one. Returns how much
    /// the key's `ctx.state` grew.
    private static func emitMerge(_ merge: LuaRef?, watermark: Int64, lefts: [[UInt8]], right: Held?, state st: inout KeyState,
                                  _ ctx: inout OperatorContext, time: Int64? = nil) -> Int {
        let at = right?.time ?? time ?? watermark
        guard let merge else {
            var out: [UInt8] = Array(#"{"left":["#.utf8)
            for (i, l) in lefts.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: l)
            }
            out.append(contentsOf: Array(#"],"right":"#.utf8))
            if let right { out.append(contentsOf: right.bytes) } else { out.append(contentsOf: Array("null".utf8)) }
            out.append(UInt8(ascii: "}"))
            ctx.emit(out, time: at)
            return 0
        }
        let args: [KeyedArg] = [.list(lefts), right.map { .event($0.bytes) } ?? .nil]
        switch ctx.call(merge, args: args, state: st.ctxState, mode: .merge) {
        case .success(let r):
            for o in r.outputs { ctx.emit(o, time: at) }
            let delta = (r.state?.count ?? 0) - (st.ctxState?.count ?? 0)
            st.ctxState = r.state
            return delta
        case .failure(let f):
            ctx.deadLetter(bytes: right?.bytes ?? lefts.first ?? [], reason: f.message, detail: f.traceback)
            return 0
        }
    }
}

extension JoinOperator {
    func snapshot(into w: inout StateWriter) {
        w.bytes.reserveCapacity(w.bytes.count + stateBytes + held * 8 + 64)
        w.u64(seq)
        w.i64(watermark)
        w.count(index.count)
        slots.withUnsafeBufferPointer { slots in
            for s in index.values { Self.write(slots[Int(s)], into: &w) }
        }
    }

    private static func write(_ st: KeyState, into w: inout StateWriter) {
        func write(_ side: [Held], _ w: inout StateWriter) {
            w.count(side.count)
            side.withUnsafeBufferPointer { held in
                for i in held.indices {   // read in place: no copy (and retain) of each held event
                    w.i64(held[i].time); w.u64(held[i].seq); w.u8(held[i].matched ? 1 : 0)
                    held[i].bytes.withUnsafeBufferPointer { w.count($0.count); w.bytes.append(contentsOf: $0) }
                }
            }
        }
        w.data(st.key.bytes)
        w.optionalData(st.ctxState)
        write(st.lefts, &w)
        write(st.rights, &w)
    }

    func forEachKey(_ body: (StateKey) -> Void) { for k in index.keys { body(k) } }

    /// Each key's state alone, in the format of `snapshot` (read back by `restore`): a changelog record.
    /// Only the key's own fields, so the record changes only when the key does: the largest sequence
    /// number it holds, and no watermark (`restore` keeps the larger of each).
    func snapshotEachKey(_ body: (StateKey, [UInt8]) -> Void) {
        for (key, s) in index {
            let st = slots[Int(s)]
            var w = StateWriter()
            w.u64(max(st.lefts.map(\.seq).max() ?? 0, st.rights.map(\.seq).max() ?? 0))
            w.i64(EventTime.missing)
            w.count(1)
            Self.write(slots[Int(s)], into: &w)
            body(key, w.bytes)
        }
    }

    mutating func restore(from r: inout StateReader, keep: (StateKey) -> Bool) throws(CheckpointError) {
        seq = max(seq, try r.u64())
        watermark = max(watermark, try r.i64())
        let keys = try r.count(minItemBytes: 13)
        for _ in 0..<keys {
            let key = StateKey(try r.data())
            var st = KeyState(key: key)
            st.ctxState = try r.optionalData()
            var sides: [[Held]] = []
            for _ in 0..<2 {
                var side: [Held] = []
                let n = try r.count(minItemBytes: 21)
                for _ in 0..<n {
                    let time = try r.i64(), seq = try r.u64(), matched = try r.u8() != 0
                    side.append(Held(time: time, seq: seq, bytes: try r.data(), matched: matched))
                }
                sides.append(side)
            }
            guard keep(key), index[key] == nil else { continue }
            st.lefts = sides[0]
            st.rights = sides[1]
            let s = Int32(slots.count)
            for h in st.rights { timers.add(at: h.time &+ 1, order: Self.fireRight, key: s, seq: h.seq) }
            st.bytes = key.bytes.count + StateBudget.overhead + (st.ctxState?.count ?? 0)
                + (st.lefts + st.rights).reduce(0) { $0 + $1.bytes.count + StateBudget.overhead }
            held += st.lefts.count + st.rights.count
            stateBytes += st.bytes
            index[key] = s
            slots.append(st)
            for h in st.lefts { scheduleEviction(of: h, in: s) }
        }
    }
}
