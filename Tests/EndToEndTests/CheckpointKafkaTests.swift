import Foundation
import Testing

/// Checkpoints over Kafka with the dev broker (`sluice dev kafka`, its own process): a join of two
/// topics is killed with kill -9 mid-stream and restarted; nothing is missing, and every offset
/// the killed process committed to its groups is one a complete checkpoint holds.
@Suite struct CheckpointKafkaTests {
    static func spec(_ bootstrap: String) -> String {
        """
        pipeline: ckpt-kafka
        sources:
          impressions:
            kafka: { brokers: '\(bootstrap)', topics: [imp], group: ckpt-imp, options: { \(KafkaEndToEndTests.consumerOptions), auto.commit.interval.ms: 100 } }
            time: ts
            lateness: 10s
            idle: 1h
          plays:
            kafka: { brokers: '\(bootstrap)', topics: [plays], group: ckpt-plays, options: { \(KafkaEndToEndTests.consumerOptions), auto.commit.interval.ms: 100 } }
            time: ts
            lateness: 10s
            idle: 1h
        transforms:
          converted:
            join:
              left:  { from: impressions, key: '{profile_id}:{title_id}' }
              right: { from: plays,       key: '{profile_id}:{title_id}' }
              within: 1h
              merge: { udf: conversions.attribute }
        sinks:
          conversions: { from: converted, file: { path: ../out/conversions.jsonl } }
        dead_letter:
          file: { path: ../out/dead_letter.jsonl }
        settings:
          checkpoint: { dir: ../ckpt, every: 300ms, keep: 1000 }
          max_drift: 1000h    # plays run hours ahead of the impressions' watermark: read them live, hold them in state
        """
    }

    /// Committed offsets in a debug log: every `topic[p]@offset` of the `committed` lines.
    static func commits(_ log: String) -> [String] {
        var out: [String] = []
        for line in log.split(separator: "\n") {
            guard let r = line.range(of: "kafka consumer: committed ") else { continue }
            out += line[r.upperBound...].split(separator: " ").map(String.init)
        }
        return out
    }

    @Test func killNineDuringAKafkaJoinThenRestartMissesNothing() async throws {
        let dir = try CheckpointTests.joinTree(impressions: 20_000, seed: 3)
        let kafka = try await offPool { try DevKafka(topics: ["imp": 2, "plays": 2], dir: dir) }
        defer { kafka.stop() }
        try dir.write(Self.spec(kafka.bootstrap), to: "pipelines/k.yaml")
        let expected = CheckpointTests.reference(dir)
        let imps = dir.lines("data/imp.jsonl"), plays = dir.lines("data/plays.jsonl")
        // After the data, one event far ahead in time on every partition moves every watermark past it all.
        let last = try #require(StatefulRun.objects(dir, "data/plays.jsonl").map { $0["ts"] as! Int }.max())
        let flushImp = #"{"profile_id":"flush","title_id":0,"impression_id":"flush","page":"x","ts":\#(last + 3 * 3_600_000)}"#
        let flushPlay = #"{"profile_id":"flush","title_id":1,"event_id":"flush","ts":\#(last + 3 * 3_600_000)}"#
        let run1 = try ChildProcess(name: "k1", executable: SluiceBinary.path, arguments: ["run", "pipelines/k.yaml"], cwd: dir,
                                    logDir: dir.appendingPathComponent("out"), environment: ["SLUICE_LOG": "debug"])
        defer { run1.kill() }
        // Once both consumers own their partitions: impressions at once, plays as a live stream
        // (about 500 a second), then the flush events.
        let assigned = await eventually(timeout: .seconds(60)) {
            run1.stderrText.contains("assigned imp[0], imp[1]") && run1.stderrText.contains("assigned plays[0], plays[1]")
        }
        try #require(assigned, "\(run1.log)")
        // (kcat's sticky partitioner would put them all on one partition; an empty partition holds its
        // source's watermark back for `idle`.)
        try await offPool {
            for p in 0..<2 { try kafka.produce(imps.enumerated().filter { $0.offset % 2 == p }.map(\.element), topic: "imp", partition: p) }
        }
        let feeder = Feeder(kafka, topic: "plays", lines: plays, chunk: 50, pause: 0.1)
        defer { feeder.cancel() }
        let flushed = Task {
            try await offPool {
                if let failure = feeder.finish() { throw DevKafka.DevKafkaError(message: failure) }
                for p in 0..<2 {
                    try kafka.produce([flushImp], topic: "imp", partition: p)
                    try kafka.produce([flushPlay], topic: "plays", partition: p)
                }
            }
        }
        // Killed once a checkpoint holding a third of the plays (and so their held results) was committed.
        let partly = await eventually(timeout: .seconds(90)) {
            let committed = Self.commits(run1.stderrText).filter { $0.hasPrefix("plays[") }
            var last: [String: Int] = [:]
            for c in committed {
                let parts = c.split(separator: "@")
                if parts.count == 2, let o = Int(parts[1]) { last[String(parts[0])] = o }
            }
            return last.values.reduce(0, +) >= plays.count / 3
        }
        try #require(partly, "\(run1.log)")
        try await offPool { run1.kill() }
        let atKill = dir.lines("out/conversions.jsonl").count
        #expect(atKill < expected.count, "everything was written before the kill; nothing was tested")

        // Every offset committed is a position of a complete checkpoint.
        var positions: Set<String> = []
        for line in try await CheckpointTests.listing(dir, "pipelines/k.yaml") {
            for m in line.matches(of: /(imp|plays)\[(\d+)\]@(\d+)/) { positions.insert("\(m.1)[\(m.2)]@\(m.3)") }
        }
        let committed = Self.commits(run1.stderrText)
        #expect(!committed.isEmpty && committed.allSatisfy { positions.contains($0) },
                "committed offsets not in a checkpoint: \(committed.filter { !positions.contains($0) }.prefix(5))")

        try CheckpointTests.dropTornLine(dir.appendingPathComponent("out/conversions.jsonl"))
        let run2 = try ChildProcess(name: "k2", executable: SluiceBinary.path, arguments: ["run", "pipelines/k.yaml"], cwd: dir,
                                    logDir: dir.appendingPathComponent("out"))
        defer { run2.kill() }
        func union() -> [String: Int] {
            var u: [String: Int] = [:]
            for o in StatefulRun.objects(dir, "out/conversions.jsonl") { u[o["event_id"] as! String] = o["impressions"] as? Int }
            return u
        }
        try await flushed.value
        let complete = await eventually(timeout: .seconds(120)) {
            union().count >= expected.count && run2.stderrText.contains("starts at the checkpointed offset")
        }
        #expect(complete, "\(run2.log)")
        let status = try await offPool { run2.terminate() }
        #expect(status == 0, "\(run2.log)")
        #expect(union() == expected)
        #expect(dir.lines("out/dead_letter.jsonl").isEmpty)
    }
}

extension CheckpointKafkaTests {
    @Test func eventsReEmittedAfterARewindCarryTheRestatementHeader() async throws {
        let dir = try SluiceBinary.scratch()
        let kafka = try await offPool { try DevKafka(topics: ["out": 1], dir: dir) }
        defer { kafka.stop() }
        try dir.write("""
            pipeline: ckpt-restate
            sources:
              in: { file: { path: ../data/in.jsonl } }
            sinks:
              out: { from: in, kafka: { brokers: '\(kafka.bootstrap)', topic: out } }
            settings:
              checkpoint: { dir: ../ckpt, every: 1h }
            """, to: "pipelines/r.yaml")
        let chunks = (0..<2).map { c in (0..<5).map { #"{"chunk":\#(c),"n":\#($0)}"# } }
        for chunk in chunks {
            try StatefulRun.append(chunk, to: dir.appendingPathComponent("data/in.jsonl").path)
            let r = try await SluiceBinary.runAsync(["run", "pipelines/r.yaml"], cwd: dir)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let rewind = try await SluiceBinary.runAsync(["rewind", "pipelines/r.yaml", "--to", "1"], cwd: dir)
        #expect(rewind.status == 0, "\(rewind.stderr)")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/r.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let got = try await offPool { try kafka.consume("out", format: "%h|%s\n") }
        let plain = chunks.flatMap { $0 }.map { "|" + $0 }
        #expect(got == plain + chunks[1].map { "sluice-restatement=1|" + $0 })
    }
}

extension CheckpointKafkaTests {
    /// `rewind --to TIME` with no checkpoint at or before it: empty state, the checkpoints set aside,
    /// and the Kafka source asks the broker for the offsets of that time on its first assignment.
    /// (librdkafka's mock cluster does not look offsets up by timestamp — it answers -1, "none at or
    /// after", so the consumer starts at the end; the offset found is not checked here.)
    @Test func rewindToATimeBeforeEveryCheckpointAsksKafkaForTheOffsetsOfThatTime() async throws {
        let dir = try SluiceBinary.scratch()
        let kafka = try await offPool { try DevKafka(topics: ["in": 1], dir: dir) }
        defer { kafka.stop() }
        try dir.write("""
            pipeline: ckpt-time
            sources:
              in: { kafka: { brokers: '\(kafka.bootstrap)', topics: [in], group: ckpt-time, options: { \(KafkaEndToEndTests.consumerOptions) } } }
            sinks:
              out: { from: in, file: { path: ../out/out.jsonl } }
            settings:
              checkpoint: { dir: ../ckpt, every: 1h }
            """, to: "pipelines/t.yaml")
        let a = (0..<5).map { #"{"batch":"a","n":\#($0)}"# }
        try await offPool { try kafka.produce(a, topic: "in") }
        let before = Date(timeIntervalSinceNow: -3600)
        let run1 = try ChildProcess(name: "t1", executable: SluiceBinary.path, arguments: ["run", "pipelines/t.yaml"], cwd: dir,
                                    logDir: dir.appendingPathComponent("out"))
        defer { run1.kill() }
        #expect(await eventually(timeout: .seconds(60)) { dir.lines("out/out.jsonl").count >= 5 }, "\(run1.log)")
        #expect(try await offPool { run1.terminate() } == 0, "\(run1.log)")
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let rewind = try await SluiceBinary.runAsync(["rewind", "pipelines/t.yaml", "--to", f.string(from: before)], cwd: dir)
        #expect(rewind.stdout.contains("no checkpoint at or before"), "\(rewind.stdout) \(rewind.stderr)")
        let listed = try await CheckpointTests.listing(dir, "pipelines/t.yaml")
        #expect(listed.isEmpty, "every checkpoint is set aside: \(listed)")
        let run2 = try ChildProcess(name: "t2", executable: SluiceBinary.path, arguments: ["run", "pipelines/t.yaml"], cwd: dir,
                                    logDir: dir.appendingPathComponent("out"))
        defer { run2.kill() }
        let ms = Int64((before.timeIntervalSince1970 * 1000).rounded())
        #expect(await eventually(timeout: .seconds(60)) { run2.stderrText.contains("(time \(ms))") }, "\(run2.log)")
        #expect(try await offPool { run2.terminate() } == 0, "\(run2.log)")
        #expect(!run2.stderrText.contains("restoring checkpoint"), "\(run2.log)")
    }
}
