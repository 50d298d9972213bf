import SluiceCore
import SluiceSpec

/// `aggregate`: windowed aggregates and materialized views on event time. Windows are aligned to
/// the epoch: tumbling `[k*size, (k+1)*size)`, sliding windows of `size` starting every `every`,
/// sessions closed by a gap (merged when an event bridges two; a session is
/// `[first, last + gap)`), or `none` (one running state per key). The output is
/// `{"key", "window_start", "window_end", ...reducer fields}` (for a UDF: the state's fields),
/// with event time `window_end - 1`. Emit: when the watermark passes a window's end
/// (`on_window_close`), after every event (`on_change`), or for the keys changed since the last
/// emit each time the watermark crosses a multiple of D (`every`), and at the end of input.
struct AggregateOperator: KeyedOperatorBehaviour {
    private struct Window {
        var start: Int64
        var end: Int64
        var acc: [Reducers.Accumulator] = []
        var udfState: [UInt8]?
        var changed = false
        var bytes = 0
    }
    private struct KeyState {
        /// Open windows (tumbling/sliding: by start; none: one at start 0; session: by start).
        var windows: [Int64: Window] = [:]
        var ctxState: [UInt8]?
        var bytes = 0
    }

    private let spec: AggregateSpec
    private let reducers: Reducers?
    private let udf: LuaRef?
    private let budget: StateBudget
    private var keys: [StateKey: KeyState] = [:]
    private var changedKeys: Set<StateKey> = []
    private var timers = TimerQueue<StateKey>()
    private var stateBytes = 0
    private var windowCount = 0
    private var watermark = EventTime.missing

    init(spec: AggregateSpec, udf: LuaRef?, budget: StateBudget) {
        self.spec = spec
        self.udf = udf
        self.budget = budget
        if case .reducers(let r) = spec.reduce { reducers = Reducers(r) } else { reducers = nil }
    }

    var gauges: OperatorGaugeValues {
        OperatorGaugeValues(keys: keys.count, stateBytes: stateBytes, held: windowCount, timers: timers.count, watermark: watermark)
    }


    mutating func process(_ e: KeyedEvent, _ ctx: inout OperatorContext) {
        let isNew = keys[e.key] == nil
        var st = keys.removeValue(forKey: e.key) ?? KeyState()   // out while it changes: no copy-on-write
        var targets = e.partial.map { [($0.start, $0.end)] } ?? spec.window.windows(for: e.time)
        if case .session(let gap) = spec.window {
            // Merge every session the event touches into one.
            let t = e.time
            let touching = st.windows.values.filter { t >= $0.start - gap && t < $0.end }.sorted { $0.start < $1.start }
            if !touching.isEmpty {
                var merged = Window(start: min(t, touching[0].start), end: max(t + gap, touching.map(\.end).max() ?? t + gap))
                merged.acc = reducers?.empty() ?? []
                var first = true
                for w in touching {
                    st.windows[w.start] = nil
                    windowCount -= 1
                    st.bytes -= w.bytes
                    stateBytes -= w.bytes
                    if first { merged.acc = w.acc; merged.udfState = w.udfState; merged.bytes = w.bytes; first = false }
                    else { mergeInto(&merged, w) }
                }
                merged.changed = true
                st.windows[merged.start] = merged
                timers.add(at: merged.end, key: e.key, seq: UInt64(bitPattern: merged.start))
                windowCount += 1
                st.bytes += merged.bytes
                stateBytes += merged.bytes
                targets = [(merged.start, merged.end)]
            }
        }
        let adding = e.key.bytes.count * (isNew ? 1 : 0) + targets.filter { st.windows[$0.0] == nil }.count * StateBudget.overhead
        guard budget.admits(keys: keys.count, bytes: stateBytes, newKey: isNew, adding: adding) else {
            ctx.stateFull += 1
            ctx.deadLetter(e, reason: "state_full", detail: "aggregate '\(ctx.name)' holds \(keys.count) keys and \(stateBytes) bytes on this worker, its 'state' limit")
            if !isNew { keys[e.key] = st }
            return
        }
        if isNew { st.bytes += e.key.bytes.count; stateBytes += e.key.bytes.count }
        for (start, end) in targets {
            var w: Window
            if let existing = st.windows.removeValue(forKey: start) {   // out while it changes: no copy-on-write
                w = existing
            } else {
                w = Window(start: start, end: end, acc: reducers?.empty() ?? [])
                w.bytes = StateBudget.overhead
                st.bytes += w.bytes
                stateBytes += w.bytes
                windowCount += 1
                if end != EventTime.infinity { timers.add(at: end, key: e.key, seq: UInt64(bitPattern: start)) }
            }
            if case .session = spec.window, w.end < end {
                w.end = end
                timers.add(at: end, key: e.key, seq: UInt64(bitPattern: start))
            }
            let before = w.bytes
            apply(e, to: &w, key: &st, &ctx)
            st.bytes += w.bytes - before
            stateBytes += w.bytes - before
            w.changed = true
            if spec.emit == .onChange { ctx.emit(output(e.key, w), time: outputTime(w, event: e.time)) }
            st.windows[start] = w
        }
        keys[e.key] = st
        if case .every = spec.emit { changedKeys.insert(e.key) }
    }

    private mutating func apply(_ e: KeyedEvent, to w: inout Window, key st: inout KeyState, _ ctx: inout OperatorContext) {
        if let reducers, let p = e.partial {
            reducers.merge(p.acc, into: &w.acc)
            w.bytes += p.bytes
            return
        }
        if let reducers {
            w.bytes += reducers.add(e.bytes[...], to: &w.acc)
            return
        }
        guard let udf else { return }
        let state = w.udfState ?? Array("{}".utf8)
        switch ctx.call(udf, args: [.event(state), .event(e.bytes)], state: st.ctxState, mode: .reduce) {
        case .success(let r):
            if let s = r.outputs.first {
                w.bytes += s.count - (w.udfState?.count ?? 0)
                w.udfState = s
            }
            let old = st.ctxState?.count ?? 0
            st.ctxState = r.state
            st.bytes += (r.state?.count ?? 0) - old
            stateBytes += (r.state?.count ?? 0) - old
        case .failure(let f):
            ctx.deadLetter(e, reason: f.message, detail: f.traceback)
        }
    }

    /// Folds window `b` into `a` (sessions that an event bridged).
    private func mergeInto(_ a: inout Window, _ b: Window) {
        a.bytes += b.bytes
        reducers?.merge(b.acc, into: &a.acc)   // a UDF state is kept from the earlier session
    }

    private func outputTime(_ w: Window, event: Int64) -> Int64 {
        w.end == EventTime.infinity ? event : w.end - 1
    }

    private func output(_ key: StateKey, _ w: Window) -> [UInt8] {
        var out: [UInt8] = Array(#"{"key":"#.utf8)
        JSONWriter.appendString(bytes: key.bytes, to: &out)
        if w.end != EventTime.infinity {
            out.append(contentsOf: Array(#","window_start":\#(w.start),"window_end":\#(w.end)"#.utf8))
        }
        if let reducers {
            reducers.write(w.acc, to: &out)
        } else if let s = w.udfState, s.count > 2, s.first == UInt8(ascii: "{"), s.last == UInt8(ascii: "}") {
            out.append(UInt8(ascii: ","))
            out.append(contentsOf: s[1..<(s.count - 1)])
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    mutating func advance(to w: Int64, _ ctx: inout OperatorContext) {
        let previous = watermark
        watermark = w
        if case .every(let d) = spec.emit {
            let crossed = w == EventTime.infinity || previous == EventTime.missing
                || WindowSpec.floorDiv(w, d) > WindowSpec.floorDiv(previous, d)
            if crossed { emitChanged(&ctx) }
        }
        while let t = timers.popDue(w) {
            let start = Int64(bitPattern: t.seq)
            guard let win = keys[t.key]?.windows[start], win.end == t.time, var st = keys.removeValue(forKey: t.key) else { continue }
            var every = false
            if case .every = spec.emit { every = true }
            if spec.emit == .onWindowClose || (every && win.changed) { ctx.emit(output(t.key, win), time: win.end - 1) }
            st.windows[start] = nil
            windowCount -= 1
            st.bytes -= win.bytes
            stateBytes -= win.bytes
            if st.windows.isEmpty {
                stateBytes -= st.bytes
                changedKeys.remove(t.key)
            } else {
                keys[t.key] = st
            }
        }
    }

    /// `emit: every`: the current value of every window changed since the last emit.
    private mutating func emitChanged(_ ctx: inout OperatorContext) {
        for key in changedKeys.sorted(by: { $0.bytes.lexicographicallyPrecedes($1.bytes) }) {
            guard var st = keys.removeValue(forKey: key) else { continue }
            for start in st.windows.keys.sorted() {
                guard var win = st.windows[start], win.changed else { continue }
                ctx.emit(output(key, win), time: win.end == EventTime.infinity ? max(watermark, 0) : win.end - 1)
                win.changed = false
                st.windows[start] = win
            }
            keys[key] = st
        }
        changedKeys.removeAll(keepingCapacity: true)
    }
}

extension WindowSpec {
    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// The windows an event at `t` belongs to, as (start, end); a session's is the event's own
    /// `[t, t + gap)` before merging.
    func windows(for t: Int64) -> [(Int64, Int64)] {
        switch self {
        case .tumbling(let size):
            let s = Self.floorDiv(t, size) * size
            return [(s, s + size)]
        case .sliding(let size, let every):
            var out: [(Int64, Int64)] = []
            var s = Self.floorDiv(t, every) * every
            while s > t - size {
                out.append((s, s + size))
                s -= every
            }
            return out.reversed()
        case .session(let gap):
            return [(t, t + gap)]
        case .none:
            return [(0, EventTime.infinity)]
        }
    }
}

extension AggregateOperator {
    func snapshot(into w: inout StateWriter) {
        w.bytes.reserveCapacity(w.bytes.count + stateBytes + windowCount * 48 + 64)
        w.i64(watermark)
        w.count(keys.count)
        for (k, st) in keys { Self.write(k, st, into: &w) }
    }

    private static func write(_ k: StateKey, _ st: KeyState, into w: inout StateWriter) {
        w.data(k.bytes)
        w.optionalData(st.ctxState)
        w.i64(Int64(st.bytes))
        w.count(st.windows.count)
        for (_, win) in st.windows.sorted(by: { $0.key < $1.key }) {
            w.i64(win.start); w.i64(win.end); w.u8(win.changed ? 1 : 0); w.i64(Int64(win.bytes))
            w.optionalData(win.udfState)
            w.count(win.acc.count)
            for a in win.acc { a.write(into: &w) }
        }
    }

    func forEachKey(_ body: (StateKey) -> Void) { for k in keys.keys { body(k) } }

    /// Each key's state alone, in the format of `snapshot` (read back by `restore`): a changelog record.
    func snapshotEachKey(_ body: (StateKey, [UInt8]) -> Void) {
        for (k, st) in keys {
            var w = StateWriter()
            w.i64(EventTime.missing); w.count(1)   // no watermark: the record changes only with the key
            Self.write(k, st, into: &w)
            body(k, w.bytes)
        }
    }

    mutating func restore(from r: inout StateReader, keep: (StateKey) -> Bool) throws(CheckpointError) {
        watermark = max(watermark, try r.i64())
        let n = try r.count(minItemBytes: 17)
        for _ in 0..<n {
            let key = StateKey(try r.data())
            var st = KeyState()
            st.ctxState = try r.optionalData()
            st.bytes = Int(try r.i64())
            let windows = try r.count(minItemBytes: 30)
            var changed = false
            for _ in 0..<windows {
                var win = Window(start: try r.i64(), end: try r.i64())
                win.changed = try r.u8() != 0
                win.bytes = Int(try r.i64())
                win.udfState = try r.optionalData()
                let accs = try r.count(minItemBytes: 1)
                for _ in 0..<accs { win.acc.append(try Reducers.Accumulator.read(from: &r)) }
                changed = changed || win.changed
                st.windows[win.start] = win
            }
            guard keep(key), keys[key] == nil else { continue }
            for win in st.windows.values where win.end != EventTime.infinity {
                timers.add(at: win.end, key: key, seq: UInt64(bitPattern: win.start))
            }
            windowCount += st.windows.count
            stateBytes += st.bytes
            if changed, case .every = spec.emit { changedKeys.insert(key) }
            keys[key] = st
        }
    }
}

extension Reducers.Accumulator {
    func write(into w: inout StateWriter) {
        switch self {
        case .count(let n): w.u8(0); w.i64(n)
        case .sum(let i, let d, let isDouble): w.u8(1); w.i64(i); w.f64(d); w.u8(isDouble ? 1 : 0)
        case .extreme(let v, let raw): w.u8(2); w.f64(v); w.optionalData(raw)
        case .avg(let s, let n): w.u8(3); w.f64(s); w.i64(n)
        case .raw(let b): w.u8(4); w.optionalData(b)
        case .distinct(let set): w.u8(5); w.count(set.count); for v in set { w.data(v.bytes) }
        case .list(let items): w.u8(6); w.count(items.count); for v in items { w.data(v) }
        }
    }

    static func read(from r: inout StateReader) throws(CheckpointError) -> Self {
        switch try r.u8() {
        case 0: return .count(try r.i64())
        case 1: return .sum(int: try r.i64(), double: try r.f64(), isDouble: try r.u8() != 0)
        case 2: return .extreme(value: try r.f64(), raw: try r.optionalData())
        case 3: return .avg(sum: try r.f64(), n: try r.i64())
        case 4: return .raw(try r.optionalData())
        case 5:
            var set = Set<StateKey>()
            for _ in 0..<(try r.count(minItemBytes: 4)) { set.insert(StateKey(try r.data())) }
            return .distinct(set)
        case 6:
            var items: [[UInt8]] = []
            for _ in 0..<(try r.count(minItemBytes: 4)) { items.append(try r.data()) }
            return .list(items)
        case let t: throw .malformed("unknown reducer state tag \(t)")
        }
    }
}
