import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore

/// `dedup` and `aggregate` against references computed here from SPEC.md's rules.
@Suite struct DedupTests {
    @Test(arguments: [UInt64(3), 4])
    func firstEventOfAKeyPassesAndLaterOnesWithinTheWindowAreDropped(seed: UInt64) throws {
        var rnd = SeededRandom(seed: seed)
        // Duplicates: the same id re-sent up to 20 s later.
        var events = Streams.make(&rnd, count: 600, prefix: "e", keys: 1, step: 0...200, disorder: 1_000, late: 0.03)
        for i in stride(from: 0, to: events.count, by: 5) where i + 3 < events.count {
            var dup = events[i]
            dup.time += Int64(rnd.int(0...20_000))
            dup.json = #"{"id":"\#(dup.id)","ts":\#(dup.time),"dup":true}"#
            events.insert(dup, at: i + 3)
        }
        let s = try Stateful.spec("""
        sources: { s: { stdin: {}, time: ts, lateness: 5s } }
        transforms: { u: { dedup: { from: s, key: '{id}', within: 10s } } }
        sinks: { out: { from: u, stdout: {} } }
        settings: { workers: 2, batch_size: 16 }
        """)
        let r = try Stateful.run(s, ["s": events.map(\.json)])
        // Reference: on-time events in arrival order; per id the kept time.
        let (onTime, late) = Streams.onTime(events, lateness: 5_000)
        var kept: [String: Int64] = [:]
        var passed: [String] = []
        for e in onTime {
            if let k = kept[e.id], abs(e.time - k) <= 10_000 { continue }
            passed.append(e.json)
            kept[e.id] = max(kept[e.id] ?? e.time, e.time)
        }
        let got = (r.captured["out"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(got.sorted() == passed.sorted(), "seed \(seed)")
        #expect(got.count < onTime.count, "seed \(seed): some duplicates were dropped")
        #expect((r.captured["dead_letter"] ?? []).count == late.count, "seed \(seed)")
        #expect(r.counts["u"]?.dropped == onTime.count - passed.count, "duplicates are counted")
        #expect(r.operators.first?.deduplicated == onTime.count - passed.count)
    }
}

/// Events that go straight from a source into a stateful transform are validated in the pass that
/// finds their key: a malformed one is dead-lettered as invalid JSON for its source, the rest pass.
@Suite struct StatefulInputValidationTests {
    @Test func malformedEventsIntoADedupAreDeadLetteredAndTheOthersPass() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {}, time: ts, lateness: 5s } }
        transforms: { u: { dedup: { from: s, key: '{id}', within: 10s } } }
        sinks: { out: { from: u, stdout: {} } }
        settings: { workers: 2, batch_size: 4 }
        """)
        let input = [
            #"{"id":"a","ts":1000}"#, #"{"id":"b","ts":1001"#, #"{"id":"a","ts":1002}"#, "[1,2]",
            #"{"id":"c","ts":1003,}"#, #"{"ts":1004}"#, #"{"id":"d","ts":1005}"#,
        ]
        let r = try Stateful.run(s, ["s": input])
        let got = (r.captured["out"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(got.sorted() == [#"{"id":"a","ts":1000}"#, #"{"id":"d","ts":1005}"#])
        let dead = (r.captured["dead_letter"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(dead.count == 4)
        #expect(dead.filter { $0.contains("invalid JSON") && $0.contains(#""component":"s""#) }.count == 3, "\(dead)")
        #expect(dead.filter { $0.contains(#""reason":"no_key""#) }.count == 1, "\(dead)")
        #expect(r.operators.first?.deduplicated == 1)
    }
}

@Suite struct AggregateTests {
    static func events(seed: UInt64) -> [TimedEvent] {
        var rnd = SeededRandom(seed: seed)
        return Streams.make(&rnd, count: 500, prefix: "e", keys: 5, step: 0...400, disorder: 2_000, late: 0.03) { r in
            #","n":\#(r.int(0...100)),"u":"u\#(r.int(0...6))""#
        }
    }

    static func n(_ e: TimedEvent) -> Int { Int((try? JSONSerialization.jsonObject(with: Data(e.json.utf8)) as? [String: Any])?["n"] as? Int ?? 0) }
    static func u(_ e: TimedEvent) -> String { ((try? JSONSerialization.jsonObject(with: Data(e.json.utf8)) as? [String: Any])?["u"] as? String) ?? "" }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { (a - ((a % b) + b) % b) / b }

    func run(window: String, emit: String = "", reduce: String = "{ c: count, s: { sum: n }, lo: { min: n }, hi: { max: n }, f: { first: id }, l: { last: id }, d: { count_distinct: u } }",
             _ events: [TimedEvent], udfs: [String: String] = [:]) throws -> RunReport {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {}, time: ts, lateness: 5s } }
        transforms:
          a:
            aggregate: { from: s, key: '{key}', window: \(window), reduce: \(reduce) \(emit) }
        sinks: { out: { from: a, stdout: {} } }
        settings: { workers: 2, batch_size: 9 }
        """, udfs: udfs)
        return try Stateful.run(s, ["s": events.map(\.json)])
    }

    /// Reference windows: (key, start, end) -> on-time events in arrival order.
    static func windows(_ events: [TimedEvent], assign: (Int64) -> [(Int64, Int64)]) -> [String: [TimedEvent]] {
        var out: [String: [TimedEvent]] = [:]
        for e in Streams.onTime(events, lateness: 5_000).onTime {
            for (s, end) in assign(e.time) { out["\(e.key)|\(s)|\(end)", default: []].append(e) }
        }
        return out
    }

    static func expected(_ w: [String: [TimedEvent]]) -> [String: String] {
        w.mapValues { es in
            let ns = es.map(n)
            return "c=\(es.count) s=\(ns.reduce(0, +)) lo=\(ns.min()!) hi=\(ns.max()!) f=\(es.first!.id) l=\(es.last!.id) d=\(Set(es.map(u)).count)"
        }
    }

    static func got(_ r: RunReport) -> [String: String] {
        var out: [String: String] = [:]
        for o in Stateful.objects(r, "out") {
            let k = "\(o["key"] as? String ?? "")|\(o["window_start"] as? Int ?? -1)|\(o["window_end"] as? Int ?? -1)"
            out[k] = "c=\(o["c"] as? Int ?? -1) s=\(o["s"] as? Int ?? -1) lo=\(o["lo"] as? Int ?? -1) hi=\(o["hi"] as? Int ?? -1) f=\(o["f"] as? String ?? "") l=\(o["l"] as? String ?? "") d=\(o["d"] as? Int ?? -1)"
        }
        return out
    }

    @Test func tumblingWindowsCloseWithEveryDeclarativeReducer() throws {
        let events = Self.events(seed: 5)
        let r = try run(window: "{ tumbling: 10s }", events)
        let ref = Self.expected(Self.windows(events) { t in let s = Self.floorDiv(t, 10_000) * 10_000; return [(s, s + 10_000)] })
        #expect(Self.got(r) == ref)
        #expect(Stateful.objects(r, "out").count == ref.count, "one output per key and window")
        #expect((r.captured["dead_letter"] ?? []).count == Streams.onTime(events, lateness: 5_000).late.count)
    }

    @Test func slidingWindowsHoldEveryWindowAnEventFallsIn() throws {
        let events = Self.events(seed: 6)
        let r = try run(window: "{ sliding: 10s, every: 4s }", events)
        let ref = Self.expected(Self.windows(events) { t in
            var out: [(Int64, Int64)] = []
            var s = Self.floorDiv(t, 4_000) * 4_000
            while s > t - 10_000 { out.append((s, s + 10_000)); s -= 4_000 }
            return out
        })
        #expect(Self.got(r) == ref)
    }

    @Test func sessionsCloseOnAGapAndMergeWhenAnEventBridgesTwo() throws {
        // Two sessions of key a (gap 1 s) that a late-arriving (but on-time) event bridges.
        let s = """
        {"key":"a","ts":1000,"n":1}
        {"key":"a","ts":1500,"n":2}
        {"key":"a","ts":3200,"n":4}
        {"key":"a","ts":2300,"n":8}
        {"key":"b","ts":2400,"n":16}
        {"key":"a","ts":9000,"n":32}
        """.split(separator: "\n").map(String.init)
        let spec = try Stateful.spec("""
        sources: { s: { stdin: {}, time: ts, lateness: 2s } }
        transforms: { a: { aggregate: { from: s, key: '{key}', window: { session: 1s }, reduce: { c: count, s: { sum: n } } } } }
        sinks: { out: { from: a, stdout: {} } }
        """)
        let r = try Stateful.run(spec, ["s": s])
        let got = (r.captured["out"] ?? []).map { String(decoding: $0, as: UTF8.self) }.sorted()
        #expect(got == [
            #"{"key":"a","window_start":1000,"window_end":4200,"c":4,"s":15}"#,
            #"{"key":"a","window_start":9000,"window_end":10000,"c":1,"s":32}"#,
            #"{"key":"b","window_start":2400,"window_end":3400,"c":1,"s":16}"#,
        ])
    }

    @Test func aMaterializedViewEmitsOnChangeAndEveryD() throws {
        let lines = (0..<20).map { #"{"key":"k\#($0 % 2)","ts":\#(1_000 * $0),"n":\#($0)}"# }
        let onChange = try run(window: "none", emit: ", emit: on_change", reduce: "{ c: count, s: { sum: n } }",
                               lines.map { TimedEvent(id: "", key: "", time: 0, json: $0) })
        let outs = Stateful.objects(onChange, "out")
        #expect(outs.count == 20, "one output per event")
        #expect(outs.last.map { ($0["c"] as? Int, $0["s"] as? Int) } ?? (nil, nil) == (10, 1 + 3 + 5 + 7 + 9 + 11 + 13 + 15 + 17 + 19))
        let every = try run(window: "none", emit: ", emit: { every: 5s }", reduce: "{ c: count, s: { sum: n } }",
                            lines.map { TimedEvent(id: "", key: "", time: 0, json: $0) })
        let e = Stateful.objects(every, "out")
        // Checked when the watermark moves (per batch of 9): crossings at 8 s and 17 s, then the end of input.
        #expect(e.count == 6, "\(e)")
        let counts = e.map { $0["c"] as? Int ?? 0 }
        #expect(counts == [5, 4, 9, 9, 10, 10] || counts == [4, 5, 9, 9, 10, 10], "\(counts)")
        let finals = e.suffix(2).map { ($0["key"] as? String ?? "", $0["c"] as? Int ?? 0) }.sorted { $0.0 < $1.0 }
        #expect(finals.map(\.1) == [10, 10])
    }

    @Test func aReduceUDFKeepsItsStateAsJSONAndSeesCtxState() throws {
        let udf = """
        local M = {}
        function M.apply(state, event, ctx)
          state.total = (state.total or 0) + event.n
          ctx.state.seen = (ctx.state.seen or 0) + 1
          state.seen_by_key = ctx.state.seen
          return state
        end
        return M
        """
        let lines = [#"{"key":"a","ts":1000,"n":1}"#, #"{"key":"a","ts":1100,"n":2}"#, #"{"key":"a","ts":12000,"n":4}"#, #"{"key":"b","ts":12500,"n":8}"#]
        let r = try run(window: "{ tumbling: 10s }", reduce: "{ udf: v.apply }", lines.map { TimedEvent(id: "", key: "", time: 0, json: $0) },
                        udfs: ["v.lua": udf])
        let got = (r.captured["out"] ?? []).map { String(decoding: $0, as: UTF8.self) }.sorted()
        #expect(got == [
            #"{"key":"a","window_start":0,"window_end":10000,"seen_by_key":2,"total":3}"#,
            #"{"key":"a","window_start":10000,"window_end":20000,"seen_by_key":3,"total":4}"#,
            #"{"key":"b","window_start":10000,"window_end":20000,"seen_by_key":1,"total":8}"#,
        ], "ctx.state is per key and outlives windows")
    }

    @Test func goingOverMaxKeysDeadLettersTheNewKeysEvents() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {}, time: ts } }
        transforms:
          a:
            aggregate: { from: s, key: '{key}', window: none, reduce: { c: count } }
            state: { max_keys: 3 }
            parallelism: 1
        sinks: { out: { from: a, stdout: {} } }
        """)
        let lines = (0..<10).map { #"{"key":"k\#($0 % 5)","ts":\#($0)}"# }
        let r = try Stateful.run(s, ["s": lines])
        let dead = (r.captured["dead_letter"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(dead.count == 4, "k3 and k4, twice each")
        #expect(dead.allSatisfy { $0.contains(#""reason":"state_full""#) })
        #expect(r.operators.first?.stateFull == 4)
        #expect(Set(Stateful.objects(r, "out").compactMap { $0["key"] as? String }) == ["k0", "k1", "k2"])
    }
}

@Suite struct EventLimitSettingTests {
    @Test func maxEventBytesFromTheSpecDeadLettersLargerEvents() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {} } }
        sinks: { out: { from: s, stdout: {} } }
        settings: { max_event_bytes: 20 }
        """)
        let r = try Stateful.run(s, ["s": [#"{"a":1}"#, #"{"a":"this one is too long"}"#]])
        #expect((r.captured["out"] ?? []).map { String(decoding: $0, as: UTF8.self) } == [#"{"a":1}"#])
        #expect((r.captured["dead_letter"] ?? []).map { String(decoding: $0, as: UTF8.self) }.first?.contains("too_large") == true)
    }
}

@Suite struct KeyOrderTests {
    /// Every key sees its events in arrival order, whatever the number of workers on either side
    /// of the exchange: `collect` keeps the order it saw.
    @Test(arguments: [(1, 1), (2, 3), (4, 2)])
    func eachKeySeesItsEventsInArrivalOrder(workers: Int, parallelism: Int) throws {
        var rnd = SeededRandom(seed: 99)
        let lines = (0..<3000).map { i in #"{"key":"k\#(rnd.int(0...40))","seq":\#(i),"ts":\#(1000 + i)}"# }
        let s = try Stateful.spec("""
        sources: { s: { stdin: {}, time: ts } }
        transforms:
          seen:
            aggregate: { from: s, key: '{key}', window: none, reduce: { order: { collect: seq } }, emit: { every: 1d } }
            parallelism: \(parallelism)
        sinks: { out: { from: seen, stdout: {} } }
        settings: { workers: \(workers), batch_size: 13 }
        """)
        let r = try Stateful.run(s, ["s": lines])
        var expected: [String: [Int]] = [:]
        for (i, l) in lines.enumerated() {
            let key = String(l.split(separator: "\"")[3])
            expected[key, default: []].append(i)
        }
        var got: [String: [Int]] = [:]
        for o in Stateful.objects(r, "out") { got[o["key"] as? String ?? ""] = o["order"] as? [Int] }
        #expect(got == expected, "workers \(workers), parallelism \(parallelism)")
    }
}

@Suite struct PreAggregationTests {
    /// Declarative reducers fold a batch's events of one key and window before the exchange, so a
    /// hot key crosses it once per batch and window, not once per event.
    @Test func aHotKeyCrossesTheExchangeOncePerBatchAndWindow() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {}, time: ts } }
        transforms:
          a: { aggregate: { from: s, key: '{key}', window: { tumbling: 10s }, reduce: { c: count, s: { sum: n } } } }
        sinks: { out: { from: a, stdout: {} } }
        """)
        let plan = Plan(s, workers: 2)
        let worker = try Worker(plan: plan, lua: LuaSettings(udfDir: s.udfs.dir, limits: .init(), version: 1, log: { _, _ in }))
        var batch = Batch(source: 0, sequence: 0, events: (0..<100).map { Event(#"{"key":"hot","n":\#($0),"ts":\#($0 < 60 ? 1000 : 15000)}"#) })
        batch.times = (0..<100).map { $0 < 60 ? 1000 : 15000 }
        batch.watermarksBefore = Array(repeating: EventTime.missing, count: 100)
        let out = worker.process(batch)
        let sent = out.keyed[0].flatMap { $0 }
        #expect(sent.count == 2, "one partial per window")
        #expect(sent.map { $0.partial?.events ?? 0 } == [60, 40])
        // And the global half gives the same answer as folding every event.
        let r = try Stateful.run(s, ["s": batch.events.map(\.text)])
        #expect((r.captured["out"] ?? []).map { String(decoding: $0, as: UTF8.self) } == [
            #"{"key":"hot","window_start":0,"window_end":10000,"c":60,"s":1770}"#,
            #"{"key":"hot","window_start":10000,"window_end":20000,"c":40,"s":3180}"#,
        ])
        #expect(r.counts["a"]?.received == 100)
    }
}

@Suite struct StateFullReportingTests {
    @Test func goingOverTheLimitIsLoggedAndShownOnReady() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {}, time: ts } }
        transforms:
          a:
            aggregate: { from: s, key: '{key}', window: none, reduce: { c: count } }
            state: { max_keys: 1 }
            parallelism: 1
        sinks: { out: { from: a, stdout: {} } }
        """)
        let logs = LogLines()
        let events = [#"{"key":"a","ts":1}"#, #"{"key":"b","ts":2}"#].map { Event($0) }
        let r = try Pipeline(spec: s, options: RunOptions(sourceOverrides: ["s": events], captureSinks: true, log: { level, msg in logs.add("\(level): \(msg)") })).run()
        #expect(r.operators.first?.stateFull == 1)
        #expect(logs.all.contains { $0.hasPrefix("warn: transform 'a' (worker 0) is at its state limit") && $0.contains("1 event(s) dead-lettered state_full") }, "\(logs.all)")

        let metrics = OperatorMetrics(operators: Plan(s, workers: 1).operators)
        metrics.update(0, lane: 0, gauges: OperatorGaugeValues(keys: 1, stateBytes: 60, held: 1, timers: 0, watermark: 2), late: 0, deduplicated: 0, stateFull: 1)
        let ready = AdminRoutes(pipeline: "p", stats: PipelineStats(), operators: metrics, sinks: [], reloader: nil, phase: PipelinePhase())
            .respond(method: "GET", path: "/ready").body
        #expect(ready.contains("operator a: 1 keys, 60 state bytes, watermark 2, late 0, STATE FULL: 1 event(s) dead-lettered state_full"), "\(ready)")
    }
}

final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}

@Suite struct ExchangeBackpressureTests {
    /// A full inbox blocks the publisher (backpressure towards the sources) and loses nothing.
    @Test func aFullInboxBlocksThePublisherUntilTheStageTakesABatch() async throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {}, time: ts } }
        transforms: { u: { dedup: { from: s, key: '{k}', within: 1s }, parallelism: 1 } }
        sinks: { out: { from: u, stdout: {} } }
        """)
        let plan = Plan(s, workers: 1)
        let stages = KeyedStages(plan: plan, board: WatermarkBoard(idleAfter: [30_000], peers: [[]], maxDrift: 1), capacity: 4)
        @Sendable func events(_ n: Int, from i: Int) -> [[[KeyedEvent]]] {
            [[(0..<n).map { KeyedEvent(key: StateKey(Array("k\(i + $0)".utf8)), time: Int64(i + $0), input: 0, bytes: [], meta: nil, source: 0, position: 0) }]]
        }
        let published = Counter()
        let thread = Thread {
            for b in 0..<3 {
                stages.publish(events(4, from: b * 4), from: Channel(stage: 0, lane: 0), feeding: [0], watermark: Int64(b * 4 + 3))
                published.add()
            }
        }
        thread.start()
        // The first batch fills the inbox (4 events); the second must wait.
        #expect(await eventually { published.value == 1 })
        try await Task.sleep(for: .milliseconds(200))
        #expect(published.value == 1, "the publisher went past a full inbox")
        var taken: [KeyedBatch] = []
        while taken.count < 3 {
            guard let b = stages.inboxes[0][0].pop() else { break }
            taken.append(b)
        }
        #expect(await eventually { published.value == 3 })
        #expect(taken.flatMap(\.events).map(\.time) == (0..<12).map(Int64.init), "nothing lost, in order")
        #expect(taken.map(\.watermark) == [3, 7, 11])
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}

/// Polls until `condition` holds (up to 10 s).
func eventually(_ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(10)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
