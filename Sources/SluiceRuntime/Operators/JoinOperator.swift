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
/// slot; its timers point at the slot, so firing them needs no hashing.
struct JoinOperator: KeyedOperatorBehaviour {
    private struct Held {
        var time: Int64
        var seq: UInt64
        var bytes: [UInt8]
        var matched = false
    }
    private struct KeyState {
        var key: StateKey
        var lefts: [Held] = []
        var rights: [Held] = []
        var ctxState: [UInt8]?
        var bytes = 0
    }

    private static let fireRight: UInt8 = 0
    private static let evictLeft: UInt8 = 1

    private let spec: JoinSpec
    private let merge: LuaRef?
    private let budget: StateBudget
    private var index: [StateKey: Int32] = [:]
    private var slots: [KeyState] = []
    private var freeSlots: [Int32] = []
    private var timers = TimerQueue<Int32>()
    private var seq: UInt64 = 0
    private var stateBytes = 0
    private var held = 0
    private var watermark = EventTime.missing

    init(spec: JoinSpec, merge: LuaRef?, budget: StateBudget) {
        self.spec = spec; self.merge = merge; self.budget = budget
    }

    var gauges: OperatorGaugeValues {
        OperatorGaugeValues(keys: index.count, stateBytes: stateBytes, held: held, timers: timers.count, watermark: watermark)
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
            timers.add(at: e.time &+ within &+ 1, order: Self.evictLeft, key: s, seq: h.seq)
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
                    let lefts = slots[s].lefts
                    let matches = lefts.indices.filter { lefts[$0].time >= r.time - within && lefts[$0].time <= r.time }
                    for i in matches { slots[s].lefts[i].matched = true }
                    if !matches.isEmpty || emitUnmatched {
                        delta += Self.emitMerge(merge, watermark: w, lefts: Self.sorted(matches.map { lefts[$0] }).map(\.bytes),
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
            if slots[s].lefts.isEmpty && slots[s].rights.isEmpty {
                stateBytes -= slots[s].bytes
                index[slots[s].key] = nil
                slots[s] = KeyState(key: StateKey([]))
                freeSlots.append(Int32(s))
            }
        }
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
