import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A tumbling aggregate on event time over a 2-partition topic of the dev broker (`sluice dev
/// kafka`, its own process), fed with kcat: each partition has its own watermark, so an event is
/// late only behind its own partition's; events absorbed into state are acknowledged (committed).
@Suite struct StatefulKafkaTests {
    static let t0: Int64 = 1_700_000_000_000

    static let spec = """
    pipeline: stateful-kafka
    sources:
      s:
        kafka:
          brokers: '${KAFKA_BROKERS}'
          topics: [ev]
          group: stateful-kafka
          options: { \(KafkaEndToEndTests.consumerOptions), auto.commit.interval.ms: 200 }
        time: ts
        lateness: 5s
        idle: 1h            # no partition turns idle while a loaded machine runs the test
    transforms:
      counts:
        aggregate: { from: s, key: '{k}', window: { tumbling: 10s }, reduce: { n: count, total: { sum: v } } }
    sinks:
      o: { from: counts, file: { path: ../out/o.jsonl } }
    dead_letter:
      file: { path: ../out/dead.jsonl }
    settings: { admin: { listen: '127.0.0.1:0' } }
    """

    struct Ev { var k: String; var v: Int; var ts: Int64; var id: String
        var line: String { #"{"k":"\#(k)","v":\#(v),"ts":\#(ts),"id":"\#(id)"}"# }
    }

    struct Window: Hashable, CustomStringConvertible {
        var key: String, start: Int64, n: Int, total: Int
        var description: String { "\(key)@\(start - StatefulKafkaTests.t0) n=\(n) total=\(total)" }
    }

    static func reference(_ evs: [Ev]) -> [Window] {
        var acc: [String: Window] = [:]
        for e in evs {
            let start = e.ts / 10_000 * 10_000
            acc["\(e.k)|\(start)", default: Window(key: e.k, start: start, n: 0, total: 0)].n += 1
            acc["\(e.k)|\(start)"]!.total += e.v
        }
        return Array(acc.values)
    }

    static func windows(_ dir: URL) -> [Window] {
        StatefulRun.objects(dir, "out/o.jsonl").map {
            Window(key: $0["key"] as? String ?? "?", start: ($0["window_start"] as? NSNumber)?.int64Value ?? -1,
                   n: $0["n"] as? Int ?? -1, total: $0["total"] as? Int ?? -1)
        }
    }

    /// Produces `evs` to one partition with their aggregate key as the message key.
    static func produce(_ kafka: DevKafka, _ evs: [Ev], partition: Int) throws {
        let r = try kafka.runKcat(["-P", "-b", kafka.bootstrap, "-t", "ev", "-p", String(partition), "-K", "|"],
                                  stdin: evs.map { "\($0.k)|\($0.line)\n" }.joined(), timeout: 60)
        guard r.status == 0 else { throw DevKafka.DevKafkaError(message: "kcat -P: \(r.stderr)") }
    }

    @Test func lateIsJudgedPerPartitionAndAbsorbedEventsAreCommitted() async throws {
        let t0 = Self.t0
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["ev": 2], dir: dir) }
        defer { kafka.stop() }
        try dir.write(Self.spec, to: "pipelines/p.yaml")

        // Partition 0 runs fast in event time (one event a second, keys x0..x2), partition 1 slowly
        // (one every 200 ms, keys y0, y1): the keys of a partition are its own, as Kafka's key hashing gives.
        let p0 = (0..<60).map { Ev(k: "x\($0 % 3)", v: $0, ts: t0 + Int64($0) * 1000, id: "a\($0)") }
        let p1 = (0..<60).map { Ev(k: "y\($0 % 2)", v: $0, ts: t0 + Int64($0) * 200, id: "b\($0)") }
        try await offPool { try Self.produce(kafka, p0, partition: 0); try Self.produce(kafka, p1, partition: 1) }

        let run = try scratch.run("pipelines/p.yaml", environment: ["KAFKA_BROKERS": kafka.bootstrap, "SLUICE_LOG": "debug"])
        defer { run.kill() }
        var port: Int?
        let started = await eventually(timeout: .seconds(30)) {
            port = StatefulRun.adminPort(run.stderrText.split(separator: "\n").map(String.init)); return port != nil
        }
        try #require(started, "\(run.log)")
        let admin = try #require(port)
        func sample(_ family: String, _ label: String) -> Double? { StatefulRun.sample(port: admin, family, label: label) }
        let readAll = await eventually(timeout: .seconds(30)) { sample("sluice_events_received_total", #"component="s""#) == 120 }
        try #require(readAll, "\(run.log)")

        // Now partition 0's watermark is t0 + 54 s, partition 1's t0 + 6.8 s (11.8 s - 5 s lateness).
        // Late for its own partition: t0 + 2 s on partition 1. Behind partition 0's watermark but not its
        // own: t0 + 8 s on partition 1 (its window [0, 10 s) is still open: the operator waits for partition 1).
        let ownLate = Ev(k: "y0", v: 1000, ts: t0 + 2000, id: "own-late")
        let notLate = Ev(k: "y0", v: 2000, ts: t0 + 8000, id: "not-late")
        // Then both partitions move on to t0 + 100 s: every window before [100 s, 110 s) closes.
        let flush0 = Ev(k: "x0", v: 0, ts: t0 + 100_000, id: "flush0")
        let flush1 = Ev(k: "y0", v: 0, ts: t0 + 100_000, id: "flush1")
        try await offPool { try Self.produce(kafka, [ownLate, notLate, flush1], partition: 1); try Self.produce(kafka, [flush0], partition: 0) }

        let counted = p0 + p1 + [notLate, flush0, flush1]
        let expected = Self.reference(counted)
        let closedBeforeEnd = expected.filter { $0.start < t0 + 100_000 }
        let closed = await eventually(timeout: .seconds(30)) { Self.windows(dir).count >= closedBeforeEnd.count }
        #expect(closed, "\(Self.windows(dir).count) of \(closedBeforeEnd.count) windows: \(run.log)")
        #expect(Kafka.multiset(Self.windows(dir)) == Kafka.multiset(closedBeforeEnd), "\(Self.windows(dir))")

        // At-least-once: the events held in the still open windows [100 s, 110 s) are acknowledged, so the
        // group's offsets reach the end of both partitions while the pipeline runs.
        let committedAll = await eventually(timeout: .seconds(30)) {
            KafkaEndToEndTests.committed(run.stderrText, topic: "ev") == [0: 61, 1: 63]
        }
        #expect(committedAll, "committed \(KafkaEndToEndTests.committed(run.stderrText, topic: "ev"))")
        // The late event is counted on the operator (it was judged before the exchange, at its source).
        #expect(sample("sluice_operator_late_events_total", #"operator="counts""#) == 1)

        let status = try await offPool { run.terminate() }
        #expect(status == 0, "\(run.log)")
        #expect(Kafka.multiset(Self.windows(dir)) == Kafka.multiset(expected), "\(Self.windows(dir))\nexpected \(expected)")

        let dead = StatefulRun.objects(dir, "out/dead.jsonl")
        #expect(dead.count == 1, "\(dir.lines("out/dead.jsonl"))")
        #expect(dead.first?["reason"] as? String == "late", "\(dir.lines("out/dead.jsonl"))")
        #expect(dir.lines("out/dead.jsonl").first?.contains("own-late") == true, "\(dir.lines("out/dead.jsonl"))")
        // The clean stop committed everything too.
        #expect(KafkaEndToEndTests.committed(run.stderrText, topic: "ev") == [0: 61, 1: 63])
        scratch.remove()
    }

    /// A partition that has sent nothing yet must hold the watermark back (for up to its `idle` time),
    /// as the spec's "minimum over all its inputs" and `idle` rule say; otherwise windows close on the
    /// first partition read and the other partition's events (not late for their own partition) open
    /// the same windows again: two results for one key and window, depending on read order.
    @Test
    func aPartitionThatHasNotSentYetHoldsTheWatermarkBack() async throws {
        let t0 = Self.t0
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["ev": 2], dir: dir) }
        defer { kafka.stop() }
        try dir.write(Self.spec, to: "pipelines/p.yaml")
        // The same aggregate key on both partitions (the topic is keyed by something else).
        let p0 = (0..<60).map { Ev(k: "a", v: $0, ts: t0 + Int64($0) * 1000, id: "a\($0)") }
        let p1 = (0..<60).map { Ev(k: "a", v: 100 + $0, ts: t0 + Int64($0) * 200, id: "b\($0)") }
        try await offPool { try Self.produce(kafka, p0, partition: 0) }
        let run = try scratch.run("pipelines/p.yaml", environment: ["KAFKA_BROKERS": kafka.bootstrap])
        defer { run.kill() }
        var port: Int?
        let started = await eventually(timeout: .seconds(30)) {
            port = StatefulRun.adminPort(run.stderrText.split(separator: "\n").map(String.init)); return port != nil
        }
        try #require(started, "\(run.log)")
        let admin = try #require(port)
        let read0 = await eventually(timeout: .seconds(30)) {
            StatefulRun.sample(port: admin, "sluice_events_received_total", label: #"component="s""#) == 60
        }
        try #require(read0, "\(run.log)")
        let absorbed = await eventually(timeout: .seconds(30)) {
            StatefulRun.sample(port: admin, "sluice_events_received_total", label: #"component="counts""#) == 60
        }
        #expect(absorbed, "\(run.log)")
        // Partition 1 has delivered nothing (and is far from idle): the operator has no watermark yet.
        #expect(StatefulRun.sample(port: admin, "sluice_operator_watermark_ms", label: #"operator="counts""#) == -1)
        try await offPool { try Self.produce(kafka, p1, partition: 1) }
        let read1 = await eventually(timeout: .seconds(30)) {
            StatefulRun.sample(port: admin, "sluice_events_received_total", label: #"component="s""#) == 120
        }
        #expect(read1, "\(run.log)")
        let status = try await offPool { run.terminate() }
        #expect(status == 0, "\(run.log)")
        #expect(Kafka.multiset(Self.windows(dir)) == Kafka.multiset(Self.reference(p0 + p1)), "\(Self.windows(dir))")
        #expect(dir.lines("out/dead.jsonl").isEmpty, "\(dir.lines("out/dead.jsonl"))")
        scratch.remove()
    }
}
