import SluiceCore
import SluiceSpec

/// `join`: an interval join on event time (Netflix's co-process joiner, Flink's IntervalJoinOperator).
/// A left L matches a right R of the same key when R.time - within <= L.time <= R.time.
/// - complete: R is held until the watermark passes R.time, then merged once with every match
///   (sorted by time, then arrival).
/// - eager: merged as soon as matches exist; each (L, R) pair is merged exactly once.
/// Lefts are evicted once the watermark passes L.time + within; with `unmatched: emit` a right
/// without matches gives `merge({}, R)` and an evicted, never matched left `merge({L}, nil)`.
/// Held events stay JSON bytes; they enter Lua only for the merge call.
struct JoinOperator: KeyedOperatorBehaviour {
    private struct Held {
        var time: Int64
        var seq: UInt64
        var bytes: [UInt8]
        var matched = false
    }
    private struct KeyState {
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
    private var keys: [StateKey: KeyState] = [:]
    private var timers = TimerQueue()
    private var seq: UInt64 = 0
    private var stateBytes = 0
    private var held = 0
    private var watermark = EventTime.missing

    init(spec: JoinSpec, merge: LuaRef?, budget: StateBudget) {
        self.spec = spec; self.merge = merge; self.budget = budget
    }

    var gauges: OperatorGaugeValues {
        OperatorGaugeValues(keys: keys.count, stateBytes: stateBytes, held: held, timers: timers.count, watermark: watermark)
    }

    mutating func process(_ e: KeyedEvent, _ ctx: inout OperatorContext) {
        let isNew = keys[e.key] == nil
        let size = e.bytes.count + StateBudget.overhead + (isNew ? e.key.bytes.count + StateBudget.overhead : 0)
        guard budget.admits(keys: keys.count, bytes: stateBytes, newKey: isNew, adding: size) else {
            ctx.stateFull += 1
            ctx.deadLetter(e, reason: "state_full", detail: "join '\(ctx.name)' holds \(keys.count) keys and \(stateBytes) bytes on this worker, its 'state' limit")
            return
        }
        seq += 1
        var st = keys[e.key] ?? KeyState()
        var h = Held(time: e.time, seq: seq, bytes: e.bytes)
        if e.input == 0 {
            if spec.emit == .eager {
                for i in st.rights.indices where st.rights[i].time - spec.within <= e.time && e.time <= st.rights[i].time {
                    st.rights[i].matched = true
                    h.matched = true
                    emitMerge(lefts: [h.bytes], right: st.rights[i], key: e.key, state: &st, &ctx)
                }
            }
            st.lefts.append(h)
            timers.add(at: e.time &+ spec.within &+ 1, order: Self.evictLeft, key: e.key, seq: h.seq)
        } else {
            if spec.emit == .eager {
                let matches = st.lefts.indices.filter { st.lefts[$0].time >= e.time - spec.within && st.lefts[$0].time <= e.time }
                if !matches.isEmpty {
                    for i in matches { st.lefts[i].matched = true }
                    h.matched = true
                    emitMerge(lefts: sorted(matches.map { st.lefts[$0] }).map(\.bytes), right: h, key: e.key, state: &st, &ctx)
                }
            }
            st.rights.append(h)
            timers.add(at: e.time &+ 1, order: Self.fireRight, key: e.key, seq: h.seq)
        }
        st.bytes += size
        stateBytes += size
        held += 1
        keys[e.key] = st
    }

    mutating func advance(to w: Int64, _ ctx: inout OperatorContext) {
        watermark = w
        while let t = timers.popDue(w) {
            guard var st = keys[t.key] else { continue }
            if t.order == Self.fireRight {
                guard let i = st.rights.firstIndex(where: { $0.seq == t.seq }) else { continue }
                let r = st.rights.remove(at: i)
                if spec.emit == .complete {
                    let matches = st.lefts.indices.filter { st.lefts[$0].time >= r.time - spec.within && st.lefts[$0].time <= r.time }
                    for i in matches { st.lefts[i].matched = true }
                    if !matches.isEmpty || spec.unmatched == .emit {
                        emitMerge(lefts: sorted(matches.map { st.lefts[$0] }).map(\.bytes), right: r, key: t.key, state: &st, &ctx)
                    }
                } else if !r.matched && spec.unmatched == .emit {
                    emitMerge(lefts: [], right: r, key: t.key, state: &st, &ctx)
                }
                release(r, &st)
            } else {
                guard let i = st.lefts.firstIndex(where: { $0.seq == t.seq }) else { continue }
                let l = st.lefts.remove(at: i)
                if !l.matched && spec.unmatched == .emit {
                    emitMerge(lefts: [l.bytes], right: nil, key: t.key, state: &st, &ctx, time: l.time)
                }
                release(l, &st)
            }
            if st.lefts.isEmpty && st.rights.isEmpty {
                stateBytes -= st.bytes
                keys[t.key] = nil
            } else {
                keys[t.key] = st
            }
        }
    }

    private mutating func release(_ h: Held, _ st: inout KeyState) {
        let size = h.bytes.count + StateBudget.overhead
        st.bytes -= size
        stateBytes -= size
        held -= 1
    }

    private func sorted(_ hs: [Held]) -> [Held] {
        hs.sorted { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
    }

    /// One merge: the UDF's results, or `{"left":[...],"right":R}` without one.
    private mutating func emitMerge(lefts: [[UInt8]], right: Held?, key: StateKey, state st: inout KeyState,
                           _ ctx: inout OperatorContext, time: Int64? = nil) {
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
            return
        }
        let args: [KeyedArg] = [.list(lefts), right.map { .event($0.bytes) } ?? .nil]
        switch ctx.call(merge, args: args, state: st.ctxState, mode: .merge) {
        case .success(let r):
            for o in r.outputs { ctx.emit(o, time: at) }
            let old = st.ctxState?.count ?? 0
            st.ctxState = r.state
            let delta = (r.state?.count ?? 0) - old
            st.bytes += delta
            stateBytes += delta
        case .failure(let f):
            ctx.deadLetter(bytes: right?.bytes ?? lefts.first ?? [], reason: f.message, detail: f.traceback)
        }
    }
}
