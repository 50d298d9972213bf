import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Several `sluice run` replicas of one join pipeline in one consumer group on the dev broker (its
/// own process): topics `imps` and `plays` of 4 partitions each, keyed by the join key (key k is on
/// partition k % 4 of both). The references are computed here, from the events produced.
/// Serialized: each test runs several replicas and a broker; together they would load the machine
/// enough to disturb the timing-sensitive tests of other suites.
@Suite(.serialized) struct ReplicaKafkaTests {
    static let t0: Int64 = 1_700_000_000_000
    static let partitions = 4

    /// The join pipeline; each replica writes `../out/${REPLICA}.jsonl` (and checkpoints into its own dir).
    static func spec(checkpoint: Bool, settings: String = "") -> String {
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
        \(settings)
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

    /// The union of the committed offsets two replicas logged (`committed imps[0]@42 ...`, debug log).
    static func committed(_ logs: [String], topic: String) -> [Int: Int] {
        var out: [Int: Int] = [:]
        for log in logs { for (p, o) in KafkaEndToEndTests.committed(log, topic: topic) { out[p] = max(out[p] ?? 0, o) } }
        return out
    }

    /// With checkpoints every 200 ms, each replica writes its join state to `replicas-j-changelog`
    /// before committing. One replica is killed (SIGKILL) after its impressions are committed: the
    /// survivor is assigned its partitions, restores their held impressions from the changelog and
    /// joins the plays that arrive afterwards. Without the changelog those pairs would be missing
    /// (the impressions are behind the committed offsets).
    @Test func aKilledReplicasPartitionsAreRestoredFromTheChangelogBySurvivor() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["imps": Self.partitions, "plays": Self.partitions], dir: dir) }
        defer { kafka.stop() }
        // The dev broker does not serve CreateTopics: the changelog topic is made with its own command.
        try await offPool { _ = try kafka.command("topic replicas-j-changelog \(Self.partitions)") }
        try dir.write(Self.spec(checkpoint: true), to: "pipelines/p.yaml")
        let env = ["KAFKA_BROKERS": kafka.bootstrap, "SLUICE_LOG": "debug"]
        let a = try scratch.run("pipelines/p.yaml", name: "a", environment: env.merging(["REPLICA": "a"]) { $1 })
        defer { a.kill() }
        let b = try scratch.run("pipelines/p.yaml", name: "b", environment: env.merging(["REPLICA": "b"]) { $1 })
        defer { b.kill() }
        let split = try await Kafka.eventually(timeout: 60) {
            let x = Self.lastAssignment(a.stderrText), y = Self.lastAssignment(b.stderrText)
            return (x["imps"]?.count ?? 0) + (y["imps"]?.count ?? 0) == Self.partitions && !(x["imps"] ?? []).isEmpty && !(y["imps"] ?? []).isEmpty
        }
        try #require(split, "\(a.log)\n\(b.log)")
        #expect(a.stderrText.contains("changelog topics: replicas-j-changelog"), "\(a.log)")

        let keys = 32
        let imps = (0..<keys).flatMap { k in (0..<3).map { j in Ev(p: k, id: "i\(k)-\(j)", ts: Self.t0 + Int64(j) * 10_000) } }
        let early = (0..<keys).map { k in Ev(p: k, id: "p\(k)-0", ts: Self.t0 + 25_000) }
        let late = (0..<keys).map { k in Ev(p: k, id: "p\(k)-1", ts: Self.t0 + 45_000) }
        let expected = Self.reference(imps: imps, plays: early + late)
        try await offPool { try Self.produce(kafka, imps, topic: "imps"); try Self.produce(kafka, early, topic: "plays") }

        // Mid-join: the early pairs are out, and both topics' offsets are committed to their end, so
        // the held impressions are only in the replicas' state (and its changelog).
        let ends = try await offPool { (kafka.endOffsets("imps"), kafka.endOffsets("plays")) }
        let committed = try await Kafka.eventually(timeout: 60) {
            Self.committed([a.stderrText, b.stderrText], topic: "imps") == ends.0
                && Self.committed([a.stderrText, b.stderrText], topic: "plays") == ends.1
        }
        try #require(committed, "imps \(Self.committed([a.stderrText, b.stderrText], topic: "imps")) of \(ends.0)\n\(a.log)\n\(b.log)")
        let earlyPairs = Self.reference(imps: imps, plays: early)
        let earlyOut = try await Kafka.eventually(timeout: 60) { Set(Self.pairs(dir, "a") + Self.pairs(dir, "b")).isSuperset(of: earlyPairs) }
        try #require(earlyOut, "\(a.log)\n\(b.log)")
        let bKeys = Self.lastAssignment(b.stderrText)["imps"] ?? []
        #expect(!bKeys.isEmpty)
        b.kill()

        try await offPool { try Self.produce(kafka, late, topic: "plays") }
        let met = try await Kafka.eventually(timeout: 60) { Set(Self.pairs(dir, "a") + Self.pairs(dir, "b")) == expected }
        let union = Set(Self.pairs(dir, "a") + Self.pairs(dir, "b"))
        #expect(met, "missing \(expected.subtracting(union).sorted { $0.description < $1.description }.prefix(10)); extra \(union.subtracting(expected).count)\n\(a.log)\n\(b.log)")
        // The survivor holds every partition now and loaded the killed replica's keys from the changelog.
        #expect(Self.lastAssignment(a.stderrText)["imps"] == Set(0..<Self.partitions), "\(a.log)")
        let restoredLine = a.stderrText.split(separator: "\n").last { $0.contains("changelog: partitions") && $0.contains("assigned") }
        #expect(restoredLine.map { !$0.contains(": 0 keys read") } == true, "\(a.log)")
        // Every late pair of the killed replica's keys was written by the survivor.
        let survivorPairs = Set(Self.pairs(dir, "a"))
        for r in late where bKeys.contains(r.p % Self.partitions) {
            for l in imps where l.p == r.p { #expect(survivorPairs.contains(Pair(left: l.id, right: r.id)), "\(l.id)+\(r.id)") }
        }
        #expect(try await offPool { a.terminate() } == 0, "\(a.log)")
        scratch.remove()
    }

    /// Rebalance churn (RELIABILITY.md test 4): replica `a` runs throughout while another replica is
    /// started and killed (SIGKILL) every few seconds, and impressions and plays flow. Nothing is
    /// missing against the reference, and at every sample a committed offset is never past a record
    /// whose effect is not out: a pair whose impression and play are both below their partitions'
    /// committed offsets (as logged by any replica so far) is in the outputs already.
    @Test func rebalanceChurnLosesNothingAndNeverCommitsPastAnUnprocessedRecord() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["imps": Self.partitions, "plays": Self.partitions], dir: dir) }
        defer { kafka.stop() }
        try await offPool { _ = try kafka.command("topic replicas-j-changelog \(Self.partitions)") }
        try dir.write(Self.spec(checkpoint: true), to: "pipelines/p.yaml")
        let env = ["KAFKA_BROKERS": kafka.bootstrap, "SLUICE_LOG": "debug"]
        let a = try scratch.run("pipelines/p.yaml", name: "a", environment: env.merging(["REPLICA": "a"]) { $1 })
        defer { a.kill() }
        let up = try await Kafka.eventually(timeout: 60) { !(Self.lastAssignment(a.stderrText)["imps"] ?? []).isEmpty }
        try #require(up, "\(a.log)")

        // Rounds of one impression and one play per key; each record's offset is known (one producer, in order).
        let keys = 12, rounds = 36
        let imps = (0..<rounds).flatMap { r in (0..<keys).map { k in Ev(p: k, id: "i\(k)-\(r)", ts: Self.t0 + Int64(r) * 5_000) } }
        let plays = (0..<rounds).flatMap { r in (0..<keys).map { k in Ev(p: k, id: "p\(k)-\(r)", ts: Self.t0 + Int64(r) * 5_000 + 2_000) } }
        let expected = Self.reference(imps: imps, plays: plays)
        var offsets: [String: Int] = [:]
        var next: [String: Int] = [:]
        for (topic, evs) in [("imps", imps), ("plays", plays)] {
            for r in 0..<rounds {
                for e in evs[(r * keys)..<((r + 1) * keys)].sorted(by: { $0.p < $1.p }) {
                    let tp = "\(topic)/\(e.p % Self.partitions)"
                    offsets[e.id] = next[tp, default: 0]; next[tp, default: 0] += 1
                }
            }
        }
        let partitionOffsets = offsets
        let feeding = Thread {
            for r in 0..<rounds {
                let i = Array(imps[(r * keys)..<((r + 1) * keys)]), p = Array(plays[(r * keys)..<((r + 1) * keys)])
                // Per partition in key order, as the offsets above were counted.
                try? Self.produce(kafka, i.sorted { $0.p < $1.p }, topic: "imps")
                try? Self.produce(kafka, p.sorted { $0.p < $1.p }, topic: "plays")
                Thread.sleep(forTimeInterval: 0.7)
            }
        }
        feeding.start()

        /// Pairs that must be out given the commits logged so far; returns the missing ones.
        func prematureCommits(_ logs: [String], _ out: Set<Pair>) -> [Pair] {
            let ci = Self.committed(logs, topic: "imps"), cp = Self.committed(logs, topic: "plays")
            return expected.filter { pair in
                let l = Int(pair.left.dropFirst().split(separator: "-")[0])! % Self.partitions
                let r = Int(pair.right.dropFirst().split(separator: "-")[0])! % Self.partitions
                return partitionOffsets[pair.left]! < ci[l, default: 0] && partitionOffsets[pair.right]! < cp[r, default: 0]
                    && !out.contains(pair)
            }
        }
        var replicas: [ChildProcess] = []
        defer { for r in replicas { r.kill() } }
        var violations: [String] = []
        var samples = 0
        func sample(_ label: String) {
            let logs = ([a] + replicas).map(\.stderrText)
            let out = Set(([a] + replicas).flatMap { Self.pairs(dir, $0.name) })
            let bad = prematureCommits(logs, out)
            samples += 1
            if !bad.isEmpty && violations.count < 5 { violations.append("\(label): \(bad.prefix(5))") }
        }
        // Each added replica is killed once it has been assigned partitions and committed some of its work
        // (so the state it checkpointed exists only in its changelog), or after 12 s (a loaded machine).
        var killedAfterCommitting = 0
        for cycle in 0..<3 {
            let b = try scratch.run("pipelines/p.yaml", name: "b\(cycle)", environment: env.merging(["REPLICA": "b\(cycle)"]) { $1 })
            replicas.append(b)
            let deadline = Date(timeIntervalSinceNow: 12)
            let before = Self.committed([a.stderrText], topic: "imps")
            while Date() < deadline {
                sample("cycle \(cycle)")
                let owned = Self.lastAssignment(b.stderrText)["imps"] ?? []
                let mine = Self.committed([b.stderrText], topic: "imps")
                if !owned.isEmpty, owned.contains(where: { (mine[$0] ?? 0) > (before[$0] ?? 0) }) { killedAfterCommitting += 1; break }
                try await Task.sleep(for: .milliseconds(300))
            }
            b.kill()
            sample("after kill \(cycle)")
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(killedAfterCommitting >= 1, "no added replica committed anything before it was killed: nothing was tested")
        while feeding.isExecuting { try await Task.sleep(for: .milliseconds(100)) }
        let names = ([a] + replicas).map(\.name)
        let met = try await Kafka.eventually(timeout: 60) { Set(names.flatMap { Self.pairs(dir, $0) }) == expected }
        let union = Set(names.flatMap { Self.pairs(dir, $0) })
        #expect(met, "missing \(expected.subtracting(union).count) of \(expected.count), e.g. \(expected.subtracting(union).sorted { $0.description < $1.description }.prefix(10))\n\(a.log)")
        #expect(violations.isEmpty, "committed past unprocessed records: \(violations)")
        #expect(samples > 10)
        // Once the last killed replica's session expired, the survivor holds everything and commits it all.
        let ends = try await offPool { (kafka.endOffsets("imps"), kafka.endOffsets("plays")) }
        // A generous bound: on a loaded 2-core machine (the whole suite in parallel) the last
        // rebalance and the survivor's commits have taken over a minute; it returns when they are done.
        let all = try await Kafka.eventually(timeout: 150) {
            Self.lastAssignment(a.stderrText)["imps"] == Set(0..<Self.partitions)
                && KafkaEndToEndTests.committed(a.stderrText, topic: "imps") == ends.0
                && KafkaEndToEndTests.committed(a.stderrText, topic: "plays") == ends.1
        }
        #expect(all, "committed \(KafkaEndToEndTests.committed(a.stderrText, topic: "imps")) \(KafkaEndToEndTests.committed(a.stderrText, topic: "plays")) of \(ends)\n\(a.log)")
        #expect(a.stderrText.contains("restored"), "\(a.log)")
        #expect(try await offPool { a.terminate() } == 0, "\(a.log)")
        scratch.remove()
    }

    /// `max_drift` with one consumer for both sources: the plays, produced first and far ahead in
    /// event time, are paused (only their partitions) while the impressions flow; a poll loop that
    /// blocked on the plays would never deliver the impressions the join needs.
    @Test func maxDriftPausesOnlyTheSourceAheadOfASharedConsumer() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["imps": Self.partitions, "plays": Self.partitions], dir: dir) }
        defer { kafka.stop() }
        try dir.write(Self.spec(checkpoint: false, settings: "  max_drift: 1m\n  batch_size: 8"), to: "pipelines/p.yaml")
        let keys = 8, n = 40
        let plays = (0..<n).flatMap { i in (0..<keys).map { k in Ev(p: k, id: "p\(k)-\(i)", ts: Self.t0 + Int64(i) * 30_000) } }
        let imps = (0..<n).flatMap { i in (0..<keys).map { k in Ev(p: k, id: "i\(k)-\(i)", ts: Self.t0 + Int64(i) * 30_000 - 10_000) } }
        let expected = Self.reference(imps: imps, plays: plays)
        try await offPool { try Self.produce(kafka, plays, topic: "plays") }
        let run = try scratch.run("pipelines/p.yaml", name: "a",
                                  environment: ["KAFKA_BROKERS": kafka.bootstrap, "REPLICA": "a", "SLUICE_LOG": "debug"])
        defer { run.kill() }
        let paused = try await Kafka.eventually(timeout: 30) { run.stderrText.contains("partitions of source 1 paused") }
        #expect(paused, "\(run.log)")
        try await offPool { try Self.produce(kafka, imps, topic: "imps") }
        let met = try await Kafka.eventually(timeout: 60) { Set(Self.pairs(dir, "a")) == expected }
        let got = Set(Self.pairs(dir, "a"))
        #expect(met, "\(got.count) of \(expected.count) pairs, missing e.g. \(expected.subtracting(got).sorted { $0.description < $1.description }.prefix(5))\n\(run.log)")
        #expect(run.stderrText.contains("partitions of source 1 resumed"), "\(run.log)")
        #expect(try await offPool { run.terminate() } == 0, "\(run.log)")
        scratch.remove()
    }
}
