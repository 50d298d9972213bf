import Foundation
import Testing

/// `retry:` on the file and Kafka sinks (the HTTP and memcached ones are in NetworkSinkTests).
@Suite struct SinkRetryTests {
    @Test func aFileSinkRetriesAFailingWriteThenDeadLettersWithTheLastError() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: full
        sources: { s: { stdin: {} } }
        sinks:
          disk: { from: s, file: { path: /dev/full }, retry: { max: 2, backoff: 10ms..20ms } }
          copy: { from: s, file: { path: ../out/copy.jsonl } }
        dead_letter: { file: { path: ../out/dead.jsonl } }
        """, to: "pipelines/p.yaml")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], stdin: "{\"n\":1}\n{\"n\":2}\n", cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let dead = dir.lines("out/dead.jsonl")
        #expect(dead.count == 2 && dead.allSatisfy { $0.contains(#""component":"disk","reason":"write failed: No space left on device (after 2 retries)""#) }, "\(dead)")
        #expect(r.stderr.contains("sink 'disk': 2 event(s) failed (write failed: No space left on device); retry 1 of 2"), "\(r.stderr)")
        #expect(dir.lines("out/copy.jsonl").count == 2)
    }

    @Test func aKafkaSinkWithRetryDeliversEverythingAfterTheBrokerComesBack() async throws {
        let scratch = try KafkaScratch()
        let dir = scratch.dir
        let kafka = try DevKafka(topics: ["out": 2], dir: dir)
        defer { kafka.stop() }
        try kafka.command("down 1")
        try dir.write("""
        pipeline: kretry
        sources: { s: { stdin: {} } }
        sinks:
          k:
            from: s
            kafka: { brokers: '\(kafka.bootstrap)', topic: out, options: { message.timeout.ms: 3000 } }
            retry: { max: 100, backoff: 100ms..500ms }
        dead_letter: { file: { path: ../out/dead.jsonl } }
        """, to: "pipelines/p.yaml")
        let run = try scratch.run("pipelines/p.yaml", name: "kretry")
        defer { run.kill() }
        let input = Kafka.seqEvents(500)
        run.stdin.fileHandleForWriting.write(Data((input.joined(separator: "\n") + "\n").utf8))
        // Deliveries time out while the broker is down, and the sink retries them.
        let retrying = await eventually(timeout: .seconds(60)) { run.stderrText.contains("retry 1 of 100") }
        #expect(retrying, "\(run.log)")
        try kafka.command("up 1")
        try run.stdin.fileHandleForWriting.close()
        let status = try await offPool { run.wait(timeout: 120) }
        #expect(status == 0, "\(run.log)")
        let output = try kafka.consume("out")
        // At-least-once: every event arrives; a timed-out message may have been written too.
        #expect(Set(output) == Set(input) && output.count >= input.count, "\(output.count) out for \(input.count) in: \(run.log)")
        #expect(dir.lines("out/dead.jsonl").isEmpty)
        scratch.remove()
    }
}
