import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Kafka pipelines through the built binary, each test against its own `sluice dev kafka` broker
/// (separate process, random ports), fed and read with kcat. Counts and contents are exact; waits
/// have generous timeouts only so that a broken run cannot hang the suite.
@Suite struct KafkaEndToEndTests {
    /// Consumer settings every Kafka source here uses: librdkafka 2.0.2's mock broker otherwise keeps a
    /// restarted member waiting a long time for its assignment.
    static let consumerOptions = "session.timeout.ms: 6000, heartbeat.interval.ms: 500"

    // MARK: the shipped router

    /// What kafka-router.yaml's `shaped` must produce for `lines`, computed without the engine: long plays
    /// (`event_type` "play" and `duration_ms` > 60000, null counting as 0) projected to
    /// {event_id, profile_id, title_id, ts, country, os = client.os} in that key order, values byte for byte.
    static func expectedShaped(_ lines: [String]) -> [(line: String, country: Substring, profile: Substring)] {
        lines.compactMap { line in
            let event = Substring(line)
            let m = RawJSON.members(event)
            guard m["event_type"] == #""play""# else { return nil }
            let duration = m["duration_ms"].flatMap { $0 == "null" ? 0 : Int($0) } ?? 0
            guard duration > 60000 else { return nil }
            var out = "{"
            for (i, (key, path)) in [("event_id", "event_id"), ("profile_id", "profile_id"), ("title_id", "title_id"),
                                      ("ts", "ts"), ("country", "country"), ("os", "client.os")].enumerated() {
                out += (i == 0 ? "" : ",") + "\"\(key)\":" + (RawJSON.value(event, path).map(String.init) ?? "null")
            }
            out += "}"
            return (out, m["country"] ?? "", (m["profile_id"] ?? "").dropFirst().dropLast())
        }
    }

    @Test func kafkaRouterShapesAndRoutesEveryLongPlayAndResumesWhereItStopped() async throws {
        let scratch = try KafkaScratch(examples: true)
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["plays": 4, "plays_us": 1, "plays_shaped": 2, "plays_dead_letter": 1], dir: dir) }
        defer { kafka.stop() }

        let input = dir.lines("data/plays.sample.jsonl")
        #expect(input.count == 3000)
        let expected = Self.expectedShaped(input)
        #expect(expected.count == 1144)  // the README's figure for this sample
        let expectedUS = expected.filter { $0.country == #""US""# }.map { "\($0.profile)\t\($0.line)" }
        #expect(expectedUS.count == 115)
        try await offPool { try kafka.produce(input, topic: "plays") }

        // First run: everything in the topic.
        let archive1 = dir.appendingPathComponent("out/archive-1.jsonl")
        let run1 = try scratch.run("pipelines/kafka-router.yaml", name: "router-1",
                                   environment: ["KAFKA_BROKERS": kafka.bootstrap, "ARCHIVE_PATH": archive1.path])
        defer { run1.kill() }
        let archived = try await Kafka.eventually { dir.lines("out/archive-1.jsonl").count >= expected.count }
        #expect(archived, "archive has \(dir.lines("out/archive-1.jsonl").count) of \(expected.count): \(run1.log)")
        #expect(try await offPool { run1.terminate() } == 0, "\(run1.log)")
        #expect(run1.stderrText.contains("kafka-router: read 3000 events; wrote us_plays=115 all_plays=1144 archive=1144; dead-lettered 0"),
                "\(run1.log)")

        let shaped = expected.map(\.line)
        #expect(Kafka.difference(dir.lines("out/archive-1.jsonl"), shaped) == nil)
        #expect(Kafka.difference(try await offPool { try kafka.consume("plays_shaped") }, shaped) == nil)
        #expect(Kafka.difference(try await offPool { try kafka.consume("plays_us", format: "%k\t%s\n") }, expectedUS) == nil)
        #expect(try await offPool { try kafka.consume("plays_dead_letter") }.isEmpty)

        // Second run, same group: only the 100 new events are read (0 lost, 0 duplicated after a clean stop).
        let fresh = (0..<100).map { i -> String in
            let type = i % 4 == 0 ? "pause" : "play"
            let duration = i % 10 == 1 ? "null" : String(30000 + i * 1000)   // null and <= 60000 are short
            let country = i % 2 == 0 ? "US" : "BR"
            return #"{"event_id":"n\#(i)","event_type":"\#(type)","profile_id":"q\#(i % 7)","title_id":\#(i),"ts":\#(1700000100000 + i),"duration_ms":\#(duration),"country":"\#(country)","client":{"app_version":"9.9.9","os":"os\#(i % 3)"},"tags":["t"]}"#
        }
        let expected2 = Self.expectedShaped(fresh)
        let expectedUS2 = expected2.filter { $0.country == #""US""# }.map { "\($0.profile)\t\($0.line)" }
        #expect(!expected2.isEmpty && !expectedUS2.isEmpty && expected2.count < 100)
        let endsBefore = try await offPool { kafka.endOffsets("plays") }
        try await offPool { try kafka.produce(fresh, topic: "plays") }

        let archive2 = dir.appendingPathComponent("out/archive-2.jsonl")
        let run2 = try scratch.run("pipelines/kafka-router.yaml", name: "router-2",
                                   environment: ["KAFKA_BROKERS": kafka.bootstrap, "ARCHIVE_PATH": archive2.path, "SLUICE_LOG": "debug"])
        defer { run2.kill() }
        let archived2 = try await Kafka.eventually { dir.lines("out/archive-2.jsonl").count >= expected2.count }
        #expect(archived2, "\(run2.log)")
        // Before stopping, the consumer must have read to the end of every partition (an extra event would
        // show in the counts). The positive signal: run 2's commits (debug log) reach the high watermarks.
        // Only partitions that got fresh events have anything to commit in run 2.
        let ends = try await offPool { kafka.endOffsets("plays") }.filter { endsBefore[$0.key] != $0.value }
        #expect(!ends.isEmpty)
        #expect(try await Kafka.eventually(timeout: 30) { Self.committed(run2.stderrText, topic: "plays").filter { ends[$0.key] != nil } == ends },
                "commits \(Self.committed(run2.stderrText, topic: "plays")), ends \(ends): \(run2.log)")
        #expect(try await offPool { run2.terminate() } == 0, "\(run2.log)")
        #expect(run2.stderrText.contains("kafka-router: read 100 events; wrote us_plays=\(expectedUS2.count) all_plays=\(expected2.count) archive=\(expected2.count); dead-lettered 0"),
                "\(run2.log)")
        #expect(Kafka.difference(dir.lines("out/archive-2.jsonl"), expected2.map(\.line)) == nil)
        #expect(Kafka.difference(try await offPool { try kafka.consume("plays_shaped") }, (expected + expected2).map(\.line)) == nil)
        #expect(Kafka.difference(try await offPool { try kafka.consume("plays_us", format: "%k\t%s\n") }, expectedUS + expectedUS2) == nil)
        #expect(try await offPool { try kafka.consume("plays_dead_letter") }.isEmpty)
        scratch.remove()
    }

    /// Message keys rendered from a template: on events a Lua map re-encoded (distinct keys, so the
    /// render stops at the first match) and on events passed through as they came (a later
    /// duplicate key wins, as it does for the UDF that decodes them), the same key for each.
    @Test func keyTemplatesRenderTheSameKeyFromReEncodedAndPassedThroughEvents() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["in": 1, "tagged": 1, "raw": 1], dir: dir) }
        defer { kafka.stop() }
        try dir.write("""
            local M = {}
            function M.tag(event) event.tagged = true return event end
            return M
            """, to: "udfs/t.lua")
        try dir.write("""
            pipeline: keys
            udfs: { dir: ../udfs }
            sources:
              s:
                kafka: { brokers: '${KAFKA_BROKERS}', topics: [in], group: keys, options: { \(Self.consumerOptions) } }
            transforms:
              tagged: { from: s, map: { udf: t.tag } }
            sinks:
              re: { from: tagged, kafka: { brokers: '${KAFKA_BROKERS}', topic: tagged, key: '{user}:{ctx.region}' } }
              raw: { from: s, kafka: { brokers: '${KAFKA_BROKERS}', topic: raw, key: '{user}:{ctx.region}' } }
            """, to: "pipelines/p.yaml")
        let input = [#"{"user":"u1","ctx":{"region":"eu"},"n":1}"#,
                     #"{"user":"first","n":2,"user":"last","ctx":{"region":"us","region":"ap"}}"#,
                     #"{"zz":0,"user":"u3","n":3}"#,
                     #"{"user":"a\"b\u00e9","ctx":{"other":1,"region":"x"}}"#,
                     #"{"ctx":{"region":"eu","a":[{"region":"no"}]},"z":[1,2],"user":42}"#]
        let keys = ["u1:eu", "last:ap", "u3:", "a\"bé:x", "42:eu"]
        try await offPool { try kafka.produce(input, topic: "in") }
        let run = try scratch.run("pipelines/p.yaml", name: "keys", environment: ["KAFKA_BROKERS": kafka.bootstrap])
        defer { run.kill() }
        let complete = try await Kafka.eventually { kafka.count("tagged") >= input.count && kafka.count("raw") >= input.count }
        #expect(complete, "\(run.log)")
        #expect(try await offPool { run.terminate() } == 0, "\(run.log)")
        let tagged = try await offPool { try kafka.consume("tagged", format: "%k\t%s\n") }
        #expect(tagged.map { String($0.prefix { $0 != "\t" }) } == keys, "\(tagged)")
        #expect(tagged[1].hasSuffix(#"{"ctx":{"region":"ap"},"n":2,"tagged":true,"user":"last"}"#), "\(tagged)")
        let raw = try await offPool { try kafka.consume("raw", format: "%k\t%s\n") }
        #expect(raw == zip(keys, input).map { "\($0)\t\($1)" }, "\(raw)")
        scratch.remove()
    }

    // MARK: crashes and faults

    /// A passthrough pipeline: Kafka topic `in` -> Kafka topic `out`, and an optional extra block.
    static func passthrough(_ name: String, commitMs: Int = 1000, sinkOptions: String = "", extra: String = "") -> String {
        """
        pipeline: \(name)
        sources:
          s:
            kafka:
              brokers: '${KAFKA_BROKERS}'
              topics: [in]
              group: \(name)
              options: { \(consumerOptions), auto.commit.interval.ms: \(commitMs) }
        sinks:
          k:
            from: s
            kafka: { brokers: '${KAFKA_BROKERS}', topic: out\(sinkOptions.isEmpty ? "" : ", options: { \(sinkOptions) }") }
        \(extra)
        """
    }

    /// Checks that every output line is an input line byte for byte and returns (missing seqs, duplicates).
    static func audit(_ output: [String], against input: [String]) -> (missing: [Int], duplicates: Int, foreign: Int) {
        let inputSet = Set(input)
        let foreign = output.filter { !inputSet.contains($0) }.count
        let seen = Set(output.compactMap(Kafka.seq))
        let missing = input.compactMap(Kafka.seq).filter { !seen.contains($0) }
        return (missing, output.count - Set(output).count, foreign)
    }

    @Test func killNineMidStreamThenRestartLosesNothing() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["in": 4, "out": 4], dir: dir) }
        defer { kafka.stop() }
        let commitMs = 500
        try dir.write(Self.passthrough("kill9", commitMs: commitMs), to: "pipelines/p.yaml")
        let env = ["KAFKA_BROKERS": kafka.bootstrap]

        // A live stream, started once the pipeline owns all partitions (no backlog): at most `chunk`
        // events every `pause` seconds, i.e. <= 5k events/s. SLUICE_LOG=debug logs every offset commit.
        // The feed holds after half of the input (until the restart), so however slowly this test
        // observes the first output, the pipeline is killed before the input is complete.
        let input = Kafka.seqEvents(20_000)
        let chunk = 250, pause = 0.05
        let run1 = try scratch.run("pipelines/p.yaml", name: "kill9-1", environment: env.merging(["SLUICE_LOG": "debug"]) { $1 })
        defer { run1.kill() }
        try #require(try await Kafka.eventually { Self.assignment(run1.stderrText, topic: "in").count == 4 }, "\(run1.log)")
        let feeder = Feeder(kafka, topic: "in", lines: input, chunk: chunk, pause: pause, holdAfter: input.count / 2)
        defer { feeder.cancel() }
        let partly = try await Kafka.eventually {
            kafka.count("out") >= 6000 && !Self.committed(run1.stderrText, topic: "in").isEmpty
        }
        try #require(partly, "output never reached 6000 with a commit: \(run1.log)")
        try await offPool { feeder.hold() }
        try await offPool { run1.kill() }
        let atKill = try await offPool { kafka.count("out") }
        let committed = Self.committed(run1.stderrText, topic: "in")
        #expect(atKill < input.count, "the whole input was already copied before the kill; nothing was tested")

        let run2 = try scratch.run("pipelines/p.yaml", name: "kill9-2", environment: env)
        defer { run2.kill() }
        feeder.resume()
        #expect(try await offPool { feeder.finish() } == nil)
        let complete = try await Kafka.eventually(timeout: 120) {
            kafka.count("out") >= input.count && Self.audit((try? kafka.consume("out")) ?? [], against: input).missing.isEmpty
        }
        #expect(complete, "\(run2.log)")
        #expect(try await offPool { run2.terminate() } == 0, "\(run2.log)")

        let output = try await offPool { try kafka.consume("out") }
        let audit = Self.audit(output, against: input)
        #expect(audit.missing.count == 0, "lost \(audit.missing.count) events, e.g. \(audit.missing.prefix(5))")
        #expect(audit.foreign == 0)
        #expect(output.count == input.count + audit.duplicates)

        // Every duplicate sits at or after the last offset the killed process committed in its partition:
        // what was committed is never read again, and the restart resumed exactly there.
        var position: [String: (partition: Int, offset: Int)] = [:]
        for line in try await offPool { try kafka.consume("in", format: "%p %o %s\n") } {
            let parts = line.split(separator: " ", maxSplits: 2)
            if parts.count == 3, let p = Int(parts[0]), let o = Int(parts[1]) { position[String(parts[2])] = (p, o) }
        }
        let copies = Kafka.multiset(output)
        let duplicated = copies.filter { $0.value > 1 }.keys
        let belowCommit = duplicated.filter { line in
            guard let at = position[line] else { return true }
            return at.offset < committed[at.partition, default: 0]
        }
        #expect(belowCommit.isEmpty, "\(belowCommit.count) duplicates were before the committed offsets \(committed)")
        #expect(duplicated.allSatisfy { copies[$0] == 2 }, "an event was copied more than twice for one crash")
        // And their number stays within one commit interval of the stream (<= 5k events/s x 0.5 s), twice
        // over for a kill landing just before a commit, plus one feeder chunk in flight.
        let bound = 2 * (chunk * Int(1 / pause)) * commitMs / 1000 + chunk
        print("kafka e2e: kill -9 after \(atKill) of \(input.count) events copied (commits logged up to \(committed.sorted { $0.key < $1.key })): \(audit.duplicates) duplicate(s) (bound \(bound))")
        #expect(audit.duplicates <= bound, "\(audit.duplicates) duplicates")
        scratch.remove()
    }

    /// The last committed offset of each partition of `topic`, from a run's debug log (`committed in[0]@42 ...`).
    static func committed(_ log: String, topic: String) -> [Int: Int] {
        var out: [Int: Int] = [:]
        for line in log.split(separator: "\n") {
            guard let r = line.range(of: "kafka consumer: committed ") else { continue }
            for item in line[r.upperBound...].split(separator: " ") where item.hasPrefix("\(topic)[") {
                let body = item.dropFirst(topic.count + 1)
                guard let close = body.firstIndex(of: "]"), let p = Int(body[..<close]),
                      let o = Int(body[body.index(close, offsetBy: 2)...]), o >= 0 else { continue }
                out[p] = o
            }
        }
        return out
    }

    @Test func brokerDownForSecondsThenBackLosesNothing() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["in": 4, "out": 4], dir: dir) }
        defer { kafka.stop() }
        try dir.write(Self.passthrough("outage"), to: "pipelines/p.yaml")

        let input = Kafka.seqEvents(20_000)
        let run = try scratch.run("pipelines/p.yaml", name: "outage", environment: ["KAFKA_BROKERS": kafka.bootstrap])
        defer { run.kill() }
        let feeder = Feeder(kafka, topic: "in", lines: input, chunk: 500, pause: 0.05)
        defer { feeder.cancel() }
        let flowing = try await Kafka.eventually { kafka.count("out") >= 4000 }
        try #require(flowing, "\(run.log)")
        // Only the pipeline faces the outage: the feed (kcat, which gives up when all brokers are down) waits.
        try await offPool { feeder.hold() }
        try await offPool { try kafka.command("down 1") }
        try await Task.sleep(for: .seconds(4))   // the outage (not a measurement)
        try await offPool { try kafka.command("up 1") }
        feeder.resume()
        #expect(try await offPool { feeder.finish() } == nil)
        let complete = try await Kafka.eventually(timeout: 120) {
            kafka.count("out") >= input.count && Self.audit((try? kafka.consume("out")) ?? [], against: input).missing.isEmpty
        }
        #expect(complete, "\(run.log)")
        #expect(try await offPool { run.terminate() } == 0, "\(run.log)")

        let output = try await offPool { try kafka.consume("out") }
        let audit = Self.audit(output, against: input)
        #expect(audit.missing.count == 0, "lost \(audit.missing.count) events, e.g. \(audit.missing.prefix(5))")
        #expect(audit.foreign == 0)
        print("kafka e2e: broker down 4 s: \(output.count) out for \(input.count) in, \(audit.duplicates) duplicate(s)")
        scratch.remove()
    }

    @Test func injectedProduceErrorsAreRetriedAndNothingIsDeadLettered() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["in": 4, "out": 4], dir: dir) }
        defer { kafka.stop() }
        // `debug: msg` makes librdkafka log each failed and retried produce request (shown with SLUICE_LOG=debug).
        try dir.write(Self.passthrough("retries", sinkOptions: "debug: msg", extra: "dead_letter: { file: { path: ../out/dead.jsonl } }"), to: "pipelines/p.yaml")

        let input = Kafka.seqEvents(5000)
        try await offPool { try kafka.produce(input, topic: "in") }
        // Only the pipeline produces from now on: the next 5 Produce requests fail (retriable).
        try await offPool { try kafka.command("errors Produce 5 NOT_ENOUGH_REPLICAS") }
        let run = try scratch.run("pipelines/p.yaml", name: "retries", environment: ["KAFKA_BROKERS": kafka.bootstrap, "SLUICE_LOG": "debug"])
        defer { run.kill() }
        let complete = try await Kafka.eventually { kafka.count("out") >= input.count }
        #expect(complete, "\(run.log)")
        #expect(try await offPool { run.terminate() } == 0, "\(run.log)")

        // Idempotent producer, retriable errors: every event exactly once.
        #expect(Kafka.difference(try await offPool { try kafka.consume("out") }, input) == nil)
        #expect(dir.lines("out/dead.jsonl").isEmpty)
        #expect(run.stderrText.contains("read 5000 events; wrote k=5000; dead-lettered 0"), "\(run.log)")
        // The sink's producer really met the 5 injected errors (one failed request each) and retried.
        let failedRequests = run.stderrText.split(separator: "\n")
            .filter { $0.contains("encountered error: Broker: Not enough in-sync replicas (actions Retry") }
        #expect(failedRequests.count == 5, "\(failedRequests)")
        scratch.remove()
    }

    @Test func undeliverableEventsGoToTheFileDeadLetterSinkWithTheTimeoutAndTheOtherSinkGetsEverything() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let source = try await offPool { try DevKafka(topics: ["in": 4], dir: dir) }
        defer { source.stop() }
        let target = try await offPool { try DevKafka(topics: ["out": 1], dir: dir) }
        defer { target.stop() }
        try await offPool { try target.command("down 1") }
        try dir.write("""
        pipeline: timeouts
        sources:
          s:
            kafka: { brokers: '\(source.bootstrap)', topics: [in], group: timeouts, options: { \(Self.consumerOptions) } }
        sinks:
          copy: { from: s, file: { path: ../out/copy.jsonl } }
          k:
            from: s
            kafka: { brokers: '\(target.bootstrap)', topic: out, options: { message.timeout.ms: 2000 } }
        dead_letter:
          file: { path: ../out/dead.jsonl }
        """, to: "pipelines/p.yaml")

        let input = Kafka.seqEvents(2000)
        try await offPool { try source.produce(input, topic: "in") }
        let run = try scratch.run("pipelines/p.yaml", name: "timeouts")
        defer { run.kill() }
        let deadLettered = try await Kafka.eventually { dir.lines("out/dead.jsonl").count >= input.count }
        #expect(deadLettered, "\(dir.lines("out/dead.jsonl").count) dead letters: \(run.log)")
        #expect(try await offPool { run.terminate() } == 0, "\(run.log)")

        #expect(Kafka.difference(dir.lines("out/copy.jsonl"), input) == nil)
        let dead = dir.lines("out/dead.jsonl").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(dead.count == input.count)
        #expect(Kafka.difference(dead.compactMap { $0["event"] as? String }, input) == nil)
        #expect(dead.allSatisfy { $0["component"] as? String == "k" })
        let reasons = Set(dead.compactMap { $0["reason"] as? String })
        #expect(!reasons.isEmpty && reasons.allSatisfy { $0.localizedCaseInsensitiveContains("timed out") }, "\(reasons)")
        #expect(run.stderrText.contains("read 2000 events; wrote copy=2000 k=0; dead-lettered 2000"), "\(run.log)")
        scratch.remove()
    }

    // MARK: groups and isolation

    /// The partitions a `sluice run` currently owns, from its `assigned`/`revoked`/`lost` log lines.
    static func assignment(_ log: String, topic: String) -> Set<Int> {
        var current: Set<Int> = []
        for line in log.split(separator: "\n") {
            guard let r = line.range(of: "kafka consumer: ") else { continue }
            let rest = line[r.upperBound...]
            if rest.hasPrefix("assigned ") {
                current = Set(rest.dropFirst("assigned ".count).split(separator: ",").compactMap { part in
                    let p = part.trimmingCharacters(in: .whitespaces)
                    guard p.hasPrefix("\(topic)["), p.hasSuffix("]") else { return nil }
                    return Int(p.dropFirst(topic.count + 1).dropLast())
                })
            } else if rest.hasPrefix("revoked ") || rest.hasPrefix("lost ") {
                current = []
            }
        }
        return current
    }

    @Test func twoInstancesSplitPartitionsAndTheSurvivorTakesOverAfterKillNine() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["in": 4], dir: dir) }
        defer { kafka.stop() }
        try dir.write("""
        pipeline: pair
        sources:
          s:
            kafka: { brokers: '${KAFKA_BROKERS}', topics: [in], group: pair, options: { \(Self.consumerOptions) } }
        sinks:
          o: { from: s, file: { path: '${OUT}' } }
        """, to: "pipelines/p.yaml")
        let outA = dir.appendingPathComponent("out/a.jsonl"), outB = dir.appendingPathComponent("out/b.jsonl")

        let a = try scratch.run("pipelines/p.yaml", name: "pair-a", environment: ["KAFKA_BROKERS": kafka.bootstrap, "OUT": outA.path])
        defer { a.kill() }
        try #require(try await Kafka.eventually { Self.assignment(a.stderrText, topic: "in").count == 4 }, "\(a.log)")
        let b = try scratch.run("pipelines/p.yaml", name: "pair-b", environment: ["KAFKA_BROKERS": kafka.bootstrap, "OUT": outB.path])
        defer { b.kill() }
        let split = try await Kafka.eventually {
            let ownedA = Self.assignment(a.stderrText, topic: "in"), ownedB = Self.assignment(b.stderrText, topic: "in")
            return !ownedA.isEmpty && !ownedB.isEmpty && ownedA.isDisjoint(with: ownedB) && ownedA.union(ownedB).count == 4
        }
        try #require(split, "\(a.log)\n\(b.log)")
        let ownedA = Self.assignment(a.stderrText, topic: "in"), ownedB = Self.assignment(b.stderrText, topic: "in")

        // Event seq goes to partition seq % 4, so an output line tells which partition it came from.
        @Sendable func produce(_ events: [String]) throws {
            for p in 0..<4 { try kafka.produce(events.filter { Kafka.seq($0)! % 4 == p }, topic: "in", partition: p) }
        }
        @Sendable func union() -> [String] { dir.lines("out/a.jsonl") + dir.lines("out/b.jsonl") }
        let first = Kafka.seqEvents(4000), second = Kafka.seqEvents(4000, start: 4000)
        try await offPool { try produce(first) }
        #expect(try await Kafka.eventually { Self.audit(union(), against: first).missing.count == 0 }, "\(a.log)\n\(b.log)")
        let partitionsA = Set(dir.lines("out/a.jsonl").compactMap(Kafka.seq).map { $0 % 4 })
        let partitionsB = Set(dir.lines("out/b.jsonl").compactMap(Kafka.seq).map { $0 % 4 })
        #expect(partitionsA == ownedA, "A wrote partitions \(partitionsA), owns \(ownedA)")
        #expect(partitionsB == ownedB, "B wrote partitions \(partitionsB), owns \(ownedB)")

        try await offPool { a.kill() }
        let writtenByA = dir.lines("out/a.jsonl").count
        try await offPool { try produce(second) }
        let all = first + second
        let complete = try await Kafka.eventually(timeout: 120) { Self.audit(union(), against: all).missing.isEmpty }
        #expect(complete, "\(b.log)")
        #expect(try await offPool { b.terminate() } == 0, "\(b.log)")

        #expect(dir.lines("out/a.jsonl").count == writtenByA)
        let audit = Self.audit(union(), against: all)
        #expect(audit.missing.count == 0, "lost \(audit.missing.count), e.g. \(audit.missing.prefix(5))")
        #expect(audit.foreign == 0)
        // The survivor copied the second half of the dead instance's partitions.
        let takenOver = Set(dir.lines("out/b.jsonl").compactMap(Kafka.seq).filter { $0 >= 4000 }.map { $0 % 4 })
        #expect(takenOver == [0, 1, 2, 3])
        print("kafka e2e: group takeover after kill -9: \(audit.duplicates) duplicate(s) of \(all.count)")
        scratch.remove()
    }

    @Test func aStalledFileSinkNeverSlowsTheKafkaSink() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try await offPool { try DevKafka(topics: ["in": 4, "out": 4], dir: dir) }
        defer { kafka.stop() }
        let fifo = dir.appendingPathComponent("out/stalled.fifo").path
        #expect(mkfifo(fifo, 0o644) == 0)
        // Hold the read end open without reading: the sink can open it, then its writes block once the pipe is full.
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        try #require(reader >= 0)
        defer { close(reader) }
        try dir.write(Self.passthrough("stall", extra: """
          stalled:
            from: s
            file: { path: ../out/stalled.fifo }
            queue: { capacity: 1000, when_full: drop_newest }
        """), to: "pipelines/p.yaml")

        let input = Kafka.seqEvents(20_000)   // ~3 MB, far more than a pipe holds
        try await offPool { try kafka.produce(input, topic: "in") }
        let run = try scratch.run("pipelines/p.yaml", name: "stall", environment: ["KAFKA_BROKERS": kafka.bootstrap])
        defer { run.kill() }
        let complete = try await Kafka.eventually { kafka.count("out") >= input.count }
        #expect(complete, "\(run.log)")
        #expect(Kafka.difference(try await offPool { try kafka.consume("out") }, input) == nil)

        // Unblock the FIFO so the run can drain and stop cleanly.
        _ = fcntl(reader, F_SETFL, fcntl(reader, F_GETFL) & ~O_NONBLOCK)
        let drained = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var bytes: [UInt8] = [] }
        let box = Box()
        DispatchQueue.global().async {
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(reader, &buf, buf.count)
                if n <= 0 { break }
                box.bytes += buf[0..<n]
            }
            drained.signal()
        }
        #expect(try await offPool { run.terminate() } == 0, "\(run.log)")
        try await offPool { drained.wait() }
        let fifoLines = String(decoding: box.bytes, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(Set(fifoLines).isSubset(of: Set(input)))
        // The stalled sink wrote some and dropped the rest, counting exactly what it dropped.
        let summary = run.stderrText.split(separator: "\n").last { $0.contains("read 20000 events") }.map(String.init) ?? ""
        #expect(summary.contains("wrote k=20000 stalled=\(fifoLines.count) (dropped \(input.count - fifoLines.count))"), "\(summary)")
        #expect(fifoLines.count < input.count)
        scratch.remove()
    }
}
