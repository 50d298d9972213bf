import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Several `sluice run` replicas of one join pipeline in one consumer group on the dev broker (its
/// own process): topics `imps` and `plays` of 4 partitions each, keyed by the join key (key k is on
/// partition k % 4 of both). The references are computed here, from the events produced.
@Suite struct ReplicaKafkaTests {
    static let t0: Int64 = 1_700_000_000_000
    static let partitions = 4

    /// The join pipeline; each replica writes `../out/${REPLICA}.jsonl` (and checkpoints into its own dir).
    static func spec(checkpoint: Bool) -> String {
        """
        pipeline: replicas
        sources:
          imps:
            kafka: { brokers: '${KAFKA_BROKERS}', topics: [imps], options: { \(KafkaEndToEndTests.consumerOptions), auto.commit.interval.ms: 200 } }
            time: ts
            lateness: 1h
            idle: 1h
          plays:
            kafka: { brokers: '${KAFKA_BROKERS}', topics: [plays], options: { \(KafkaEndToEndTests.consumerOptions), auto.commit.interval.ms: 200 } }
            time: ts
            lateness: 1h
            idle: 1h
        transforms:
          j:
            join:
              left: { from: imps, key: '{p}' }
              right: { from: plays, key: '{p}' }
              within: 1m
              emit: eager
        sinks:
          o: { from: j, file: { path: '../out/${REPLICA}.jsonl' } }
        dead_letter:
          file: { path: '../out/${REPLICA}-dead.jsonl' }
        settings:
          workers: 2
        \(checkpoint ? "  checkpoint: { dir: '../ckpt/${REPLICA}', every: 200ms }" : "")
        """
    }

    struct Ev: Hashable {
        var p: Int, id: String, ts: Int64
        var line: String { #"{"p":\#(p),"id":"\#(id)","ts":\#(ts)}"# }
    }

    struct Pair: Hashable, CustomStringConvertible {
        var left: String, right: String
        var description: String { "\(left)+\(right)" }
    }

    /// Every (impression, play) pair of one key with play.ts - 60 s <= imp.ts <= play.ts.
    static func reference(imps: [Ev], plays: [Ev]) -> Set<Pair> {
        var out = Set<Pair>()
        let byKey = Dictionary(grouping: imps, by: \.p)
        for r in plays {
            for l in byKey[r.p] ?? [] where r.ts - 60_000 <= l.ts && l.ts <= r.ts { out.insert(Pair(left: l.id, right: r.id)) }
        }
        return out
    }

    /// The pairs a replica wrote (`{"left":[L...],"right":R}` lines), with how many times each was written.
    static func pairs(_ dir: URL, _ replica: String) -> [Pair] {
        StatefulRun.objects(dir, "out/\(replica).jsonl").flatMap { o -> [Pair] in
            let right = (o["right"] as? [String: Any])?["id"] as? String ?? "?"
            return (o["left"] as? [[String: Any]] ?? []).map { Pair(left: $0["id"] as? String ?? "?", right: right) }
        }
    }

    /// Produces `evs` to `topic`, each to partition p % 4 with its key as the message key.
    static func produce(_ kafka: DevKafka, _ evs: [Ev], topic: String) throws {
        for (partition, part) in Dictionary(grouping: evs, by: { $0.p % partitions }) {
            let r = try kafka.runKcat(["-P", "-b", kafka.bootstrap, "-t", topic, "-p", String(partition), "-K", "|"],
                                      stdin: part.map { "\($0.p)|\($0.line)\n" }.joined(), timeout: 60)
            guard r.status == 0 else { throw DevKafka.DevKafkaError(message: "kcat -P \(topic): \(r.stderr)") }
        }
    }

    /// The partitions of each topic in a replica's last `assigned ...` log line.
    static func lastAssignment(_ log: String) -> [String: Set<Int>] {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("kafka consumer: assigned ") }),
              let r = line.range(of: "kafka consumer: assigned ") else { return [:] }
        var out: [String: Set<Int>] = [:]
        for item in line[r.upperBound...].split(separator: ",") {
            let t = item.trimmingCharacters(in: .whitespaces)
            guard let open = t.firstIndex(of: "["), let close = t.firstIndex(of: "]"),
                  let p = Int(t[t.index(after: open)..<close]) else { continue }
            out[String(t[..<open]), default: []].insert(p)
        }
        return out
    }

    /// Two replicas split the partitions; one consumer per replica reads both topics, so partition p
    /// of `imps` and of `plays` go to the same replica and every pair meets (no checkpoints needed).
    @Test func twoReplicasShareTheWorkAndEveryJoinPairMeets() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["imps": Self.partitions, "plays": Self.partitions], dir: dir) }
        defer { kafka.stop() }
        try dir.write(Self.spec(checkpoint: false), to: "pipelines/p.yaml")
        let a = try scratch.run("pipelines/p.yaml", name: "a", environment: ["KAFKA_BROKERS": kafka.bootstrap, "REPLICA": "a"])
        defer { a.kill() }
        let b = try scratch.run("pipelines/p.yaml", name: "b", environment: ["KAFKA_BROKERS": kafka.bootstrap, "REPLICA": "b"])
        defer { b.kill() }
        // Both are members with half of the partitions each before anything is produced.
        let split = try await Kafka.eventually(timeout: 60) {
            let x = Self.lastAssignment(a.stderrText), y = Self.lastAssignment(b.stderrText)
            return (x["imps"]?.count ?? 0) + (y["imps"]?.count ?? 0) == Self.partitions && !(x["imps"] ?? []).isEmpty && !(y["imps"] ?? []).isEmpty
        }
        try #require(split, "\(a.log)\n\(b.log)")
        for r in [a, b] {
            let assigned = Self.lastAssignment(r.stderrText)
            #expect(assigned["imps"] == assigned["plays"], "\(r.name): \(assigned)")
        }
        #expect(!a.stderrText.contains("source 'imps': kafka consumer: librdkafka"), "one consumer for both sources: \(a.log)")

        let keys = 24
        let imps = (0..<keys).flatMap { k in (0..<3).map { j in Ev(p: k, id: "i\(k)-\(j)", ts: Self.t0 + Int64(j) * 10_000) } }
        let plays = (0..<keys).flatMap { k in (0..<2).map { j in Ev(p: k, id: "p\(k)-\(j)", ts: Self.t0 + 25_000 + Int64(j) * 20_000) } }
        let expected = Self.reference(imps: imps, plays: plays)
        try await offPool { try Self.produce(kafka, imps, topic: "imps"); try Self.produce(kafka, plays, topic: "plays") }

        let met = try await Kafka.eventually(timeout: 60) {
            Set(Self.pairs(dir, "a") + Self.pairs(dir, "b")) == expected
        }
        let union = Set(Self.pairs(dir, "a") + Self.pairs(dir, "b"))
        #expect(met, "missing \(expected.subtracting(union).sorted { $0.description < $1.description }.prefix(10)); extra \(union.subtracting(expected).count)\n\(a.log)\n\(b.log)")
        // Each pair once: the replicas hold disjoint keys.
        #expect((Self.pairs(dir, "a") + Self.pairs(dir, "b")).count == expected.count)
        #expect(!Self.pairs(dir, "a").isEmpty && !Self.pairs(dir, "b").isEmpty)
        #expect(try await offPool { a.terminate() } == 0, "\(a.log)")
        #expect(try await offPool { b.terminate() } == 0, "\(b.log)")
        scratch.remove()
    }
}
