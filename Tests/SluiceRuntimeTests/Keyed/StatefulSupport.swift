import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceSpec

/// In-process runs of stateful pipelines over in-memory inputs, with captured sinks.
enum Stateful {
    static func spec(_ yaml: String, udfs files: [String: String] = [:]) throws -> PipelineSpec {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-keyed-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("udfs"), withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent("udfs/\(name)")) }
        return try SpecLoader.load(text: yaml, file: "p.yaml", directory: dir.appendingPathComponent("pipelines").path, environment: [:])
    }

    static func run(_ spec: PipelineSpec, _ input: [String: [String]]) throws -> RunReport {
        let events = input.mapValues { $0.enumerated().map { Event($1, position: Int64($0 + 1)) } }
        return try Pipeline(spec: spec, options: RunOptions(sourceOverrides: events, captureSinks: true, log: { _, _ in })).run()
    }

    static func objects(_ r: RunReport, _ sink: String) -> [[String: Any]] {
        (r.captured[sink] ?? []).compactMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
    }

    static func json(_ o: [String: Any]) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }
}

/// A seeded generator (SplitMix64). `SLUICE_TEST_SEED` replaces the test's own seed; the seed in use
/// is printed, so a failure can be replayed.
struct SeededRandom {
    private var state: UInt64
    let seed: UInt64
    init(seed: UInt64) {
        self.seed = ProcessInfo.processInfo.environment["SLUICE_TEST_SEED"].flatMap { UInt64($0) } ?? seed
        state = self.seed
        print("SeededRandom: seed \(self.seed) (replay with SLUICE_TEST_SEED=\(self.seed))")
    }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) / 1_000_000 < p }
}

/// An event as a test reference sees it.
struct TimedEvent {
    var id: String
    var key: String
    var time: Int64
    var json: String
}

/// Streams in arrival order with event times out of order by up to `disorder` ms, and a fraction
/// `late` of events held back by `lateBy` ms (so they arrive behind the watermark).
enum Streams {
    static func make(_ rnd: inout SeededRandom, count: Int, prefix: String, keys: Int, start: Int64 = 1_700_000_000_000,
                     step: ClosedRange<Int> = 0...50, disorder: Int = 2_000, late: Double = 0, lateBy: ClosedRange<Int> = 30_000...60_000,
                     extra: (inout SeededRandom) -> String = { _ in "" }) -> [TimedEvent] {
        var clock = start
        var pending: [(arrival: Int64, seq: Int, e: TimedEvent)] = []
        for i in 0..<count {
            clock += Int64(rnd.int(step))
            let t = clock - Int64(rnd.int(0...disorder))
            let key = "k\(rnd.int(0...(keys - 1)))"
            let id = "\(prefix)\(i)"
            let json = #"{"id":"\#(id)","key":"\#(key)","ts":\#(t)\#(extra(&rnd))}"#
            var arrival = clock
            if late > 0, rnd.chance(late) { arrival += Int64(rnd.int(lateBy)) }
            pending.append((arrival, i, TimedEvent(id: id, key: key, time: t, json: json)))
        }
        return pending.sorted { ($0.arrival, $0.seq) < ($1.arrival, $1.seq) }.map(\.e)
    }

    /// Splits a stream in arrival order into events on time and events late against the stream's
    /// own watermark (largest time so far minus `lateness`) — the rule of SPEC.md, computed here.
    static func onTime(_ events: [TimedEvent], lateness: Int64) -> (onTime: [TimedEvent], late: [TimedEvent]) {
        var maxSeen: Int64? = nil
        var ok: [TimedEvent] = [], late: [TimedEvent] = []
        for e in events {
            if let m = maxSeen, e.time < m - lateness { late.append(e) } else { ok.append(e) }
            maxSeen = max(maxSeen ?? e.time, e.time)
        }
        return (ok, late)
    }
}
