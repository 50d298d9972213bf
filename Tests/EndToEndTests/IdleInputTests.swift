import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Watermarks across inputs that do not move together, through the built binary over followed
/// files: `idle` lets a silent input stop holding windows back, and `settings.max_drift` pauses an
/// input that runs ahead, which bounds what a join holds. Outputs are checked against references
/// computed here; state sizes are read from the admin endpoint's `/metrics`.
@Suite struct IdleInputTests {
    static let t0: Int64 = 1_700_000_000_000

    static func aggregateSpec(idle: String?) -> String {
        let idleKey = idle.map { ", idle: \($0)" } ?? ""
        return """
        pipeline: idle
        sources:
          a: { file: { path: ../data/a.jsonl, follow: true }, time: ts\(idleKey) }
          b: { file: { path: ../data/b.jsonl, follow: true }, time: ts\(idleKey) }
        transforms:
          both: { from: [a, b], filter: { match: { k: { exists: true } } } }
          counts:
            aggregate: { from: both, key: '{k}', window: { tumbling: 10s }, reduce: { n: count, total: { sum: v } } }
        sinks:
          o: { from: counts, file: { path: ../out/o.jsonl } }
        dead_letter:
          file: { path: ../out/dead.jsonl }
        settings: { admin: { listen: '127.0.0.1:0' } }
        """
    }

    /// Events of source `a`: one a second from `t0 + from` s, keys x0/x1 alternating, v = i.
    static func events(_ range: Range<Int>) -> [(k: String, v: Int, ts: Int64)] {
        range.map { ("x\($0 % 2)", $0, t0 + Int64($0) * 1000) }
    }

    static func lines(_ evs: [(k: String, v: Int, ts: Int64)]) -> [String] {
        evs.map { #"{"k":"\#($0.k)","v":\#($0.v),"ts":\#($0.ts)}"# }
    }

    struct Window: Hashable, CustomStringConvertible {
        var key: String, start: Int64, end: Int64, n: Int, total: Int
        var description: String { "\(key)@\(start - IdleInputTests.t0)+10s n=\(n) total=\(total)" }
    }

    /// Tumbling 10 s windows per key: count and sum of v.
    static func reference(_ evs: [(k: String, v: Int, ts: Int64)]) -> [Window] {
        var acc: [String: Window] = [:]
        for e in evs {
            let start = e.ts / 10_000 * 10_000
            acc["\(e.k)|\(start)", default: Window(key: e.k, start: start, end: start + 10_000, n: 0, total: 0)].n += 1
            acc["\(e.k)|\(start)"]!.total += e.v
        }
        return Array(acc.values)
    }

    static func windows(_ dir: URL) -> [Window] {
        StatefulRun.objects(dir, "out/o.jsonl").map {
            Window(key: $0["key"] as? String ?? "?", start: ($0["window_start"] as? NSNumber)?.int64Value ?? -1,
                   end: ($0["window_end"] as? NSNumber)?.int64Value ?? -1, n: $0["n"] as? Int ?? -1, total: $0["total"] as? Int ?? -1)
        }
    }

    static func start(_ dir: URL) async throws -> (ReloadingRun, Int) {
        let run = try ReloadingRun(dir: dir)
        var port: Int?
        let started = await eventually(timeout: .seconds(20)) { port = StatefulRun.adminPort(run.stderrLines); return port != nil }
        try #require(started, "no admin port logged: \(run.stderrLines)")
        return (run, try #require(port))
    }

    @Test func windowsCloseOnceASilentInputHasBeenIdleForItsIdleTime() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write(Self.aggregateSpec(idle: "1s"), to: "pipelines/p.yaml")
        let first = Self.events(0..<26)   // windows [0,10) [10,20) closed by a's watermark 25 s; [20,30) open
        try dir.write(Self.lines(first).map { $0 + "\n" }.joined(), to: "data/a.jsonl")
        try dir.write("", to: "data/b.jsonl")   // b never sends anything
        let (run, _) = try await Self.start(dir)

        let closed = await eventually(timeout: .seconds(15)) { Self.windows(dir).count >= 4 }
        #expect(closed, "no window closed while b was silent: \(dir.lines("out/o.jsonl")) \(run.stderrLines)")
        let firstTwo = Self.reference(first).filter { $0.end <= Self.t0 + 20_000 }
        #expect(Kafka.multiset(Self.windows(dir)) == Kafka.multiset(firstTwo), "\(Self.windows(dir))")

        // b is still silent: a's watermark alone goes on closing windows.
        let second = Self.events(26..<36)
        try StatefulRun.append(Self.lines(second), to: dir.appendingPathComponent("data/a.jsonl").path)
        let more = await eventually(timeout: .seconds(15)) { Self.windows(dir).count >= 6 }
        #expect(more, "\(dir.lines("out/o.jsonl"))")
        let firstThree = Self.reference(first + second).filter { $0.end <= Self.t0 + 30_000 }
        #expect(Kafka.multiset(Self.windows(dir)) == Kafka.multiset(firstThree), "\(Self.windows(dir))")

        run.send(SIGTERM)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        // The end of input closes the last window [30, 40).
        #expect(Kafka.multiset(Self.windows(dir)) == Kafka.multiset(Self.reference(first + second)), "\(Self.windows(dir))")
        #expect(dir.lines("out/dead.jsonl").isEmpty, "\(dir.lines("out/dead.jsonl"))")
        try? FileManager.default.removeItem(at: dir)
    }

    /// The negative check: with a long `idle` (1 h; the default is 30 s) a silent input holds every window open. It
    /// observes for 3 s (three times the idle time after which the test above sees windows close),
    /// then SIGTERM ends the inputs and every window comes out.
    @Test func withALongIdleASilentInputHoldsEveryWindowOpen() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write(Self.aggregateSpec(idle: "1h"), to: "pipelines/p.yaml")   // a long idle: robust on a loaded machine
        let evs = Self.events(0..<26)
        try dir.write(Self.lines(evs).map { $0 + "\n" }.joined(), to: "data/a.jsonl")
        try dir.write("", to: "data/b.jsonl")
        let (run, port) = try await Self.start(dir)

        let opened = await eventually(timeout: .seconds(3)) { !dir.lines("out/o.jsonl").isEmpty }
        #expect(!opened, "a window closed although b was silent for less than its idle time: \(dir.lines("out/o.jsonl"))")
        #expect(StatefulRun.sample(port: port, "sluice_operator_watermark_ms", label: #"operator="counts""#) == -1)

        run.send(SIGTERM)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(Kafka.multiset(Self.windows(dir)) == Kafka.multiset(Self.reference(evs)), "\(Self.windows(dir))")
        #expect(dir.lines("out/dead.jsonl").isEmpty, "\(dir.lines("out/dead.jsonl"))")
        try? FileManager.default.removeItem(at: dir)
    }

    // MARK: max_drift

    static func driftSpec(_ drift: String) -> String {
        """
        pipeline: drift
        sources:
          dense:  { file: { path: ../data/dense.jsonl, follow: true }, time: ts, idle: 1h }
          sparse: { file: { path: ../data/sparse.jsonl, follow: true }, time: ts, idle: 1h }
        transforms:
          j:
            join:
              left:  { from: sparse, key: '{k}' }
              right: { from: dense, key: '{k}' }
              within: 10s
        sinks:
          o: { from: j, file: { path: ../out/o.jsonl } }
        dead_letter:
          file: { path: ../out/dead.jsonl }
        settings: { batch_size: 16, max_drift: \(drift), admin: { listen: '127.0.0.1:0' } }
        """
    }

    /// A dense right input (one event every 200 ms for 20 min) and a sparse left one (every 1.5 s).
    /// The sparse file is written whole; the dense one first only its first minute, then the rest.
    /// Returns the peak of `sluice_operator_held_results` seen while the first minute is all there is
    /// (after waiting for the no-drift answer, at least 700 held) and over the whole run, and checks
    /// the join's output against the reference.
    func driftRun(_ drift: String, expectHeldAtLeast: Double?) async throws -> (phaseA: Double, overall: Double) {
        let t0 = Self.t0
        let dense = (0..<6000).map { #"{"k":"a","d":\#($0),"ts":\#(t0 + Int64($0) * 200)}"# }
        let sparse = (0..<800).map { #"{"k":"a","s":\#($0),"ts":\#(t0 + 700 + Int64($0) * 1500)}"# }
        let dir = try SluiceBinary.scratch()
        try dir.write(Self.driftSpec(drift), to: "pipelines/p.yaml")
        try dir.write(dense.prefix(300).map { $0 + "\n" }.joined(), to: "data/dense.jsonl")
        try dir.write(sparse.map { $0 + "\n" }.joined(), to: "data/sparse.jsonl")
        let (run, port) = try await Self.start(dir)
        var peak = 0.0
        func held() -> Double {
            let h = StatefulRun.sample(port: port, "sluice_operator_held_results", label: #"operator="j""#) ?? 0
            peak = max(peak, h)
            return h
        }
        func received() -> Double? { StatefulRun.sample(port: port, "sluice_events_received_total", label: #"component="j""#) }

        // Phase A: the first minute of the dense file is read.
        let denseRead = await eventually(timeout: .seconds(15)) {
            _ = held()
            return StatefulRun.sample(port: port, "sluice_events_received_total", label: #"component="dense""#) == 300
        }
        #expect(denseRead, "\(run.stderrLines)")
        if let atLeast = expectHeldAtLeast {
            let filled = await eventually(timeout: .seconds(15)) { held() >= atLeast }
            #expect(filled, "held \(peak)")
        } else {
            // The sparse input is paused ahead of the dense one: watch it for a second.
            _ = await eventually(timeout: .seconds(1)) { _ = held(); return false }
        }
        let phaseA = peak
        try StatefulRun.append(Array(dense.dropFirst(300)), to: dir.appendingPathComponent("data/dense.jsonl").path)
        let all = await eventually(timeout: .seconds(30)) { _ = held(); return received() == 6800 }
        #expect(all, "the join received \(String(describing: received())) of 6800")
        run.send(SIGTERM)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")

        // Reference: every dense event with the sparse ones of [ts - 10 s, ts] (in time order); none
        // without a match (unmatched: drop).
        var expected: [String] = []
        for (i, r) in dense.enumerated() {
            let ts = t0 + Int64(i) * 200
            let lefts = sparse.indices.filter { let l = t0 + 700 + Int64($0) * 1500; return ts - 10_000 <= l && l <= ts }.map { sparse[$0] }
            if !lefts.isEmpty { expected.append(#"{"left":["# + lefts.joined(separator: ",") + #"],"right":"# + r + "}") }
        }
        #expect(Kafka.difference(dir.lines("out/o.jsonl"), expected) == nil)
        #expect(dir.lines("out/dead.jsonl").isEmpty, "\(dir.lines("out/dead.jsonl").prefix(3))")
        try? FileManager.default.removeItem(at: dir)
        return (phaseA, peak)
    }

    @Test func maxDriftPausesTheInputThatRunsAheadSoTheJoinHoldsLittle() async throws {
        // Without a useful limit the sparse file is read at once: its 800 lefts wait for the dense watermark.
        let loose = try await driftRun("10000h", expectHeldAtLeast: 700)
        // With 1 m the sparse input stays within a minute (plus one batch) of the dense one.
        let tight = try await driftRun("1m", expectHeldAtLeast: nil)
        #expect(loose.phaseA >= 700, "max_drift 10000h held at most \(loose.phaseA)")
        // Bound: either input may run up to 1 m (+ a batch of 16) ahead of the other: at most ~40 sparse
        // lefts or ~300 dense rights (one per 200 ms) wait, plus the inbox; 10000h holds all 800 lefts.
        #expect(tight.overall < 450, "max_drift 1m held up to \(tight.overall) (10000h: \(loose.overall))")
        print("max_drift peaks of sluice_operator_held_results: 1m \(tight.overall), 10000h \(loose.overall)")
    }
}
