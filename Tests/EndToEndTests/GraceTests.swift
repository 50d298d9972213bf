import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM with a stalled `block` sink: past `settings.grace` the process exits 1 naming the sink
/// that still holds events; a second signal forces the same exit at once.
@Suite struct GraceTests {
    /// A pipeline whose `stuck` sink writes to a FIFO nobody reads (its open blocks forever).
    func stalledPipeline(grace: String) throws -> (URL, SluiceBinary.Running) {
        let dir = try SluiceBinary.scratch()
        #expect(mkfifo(dir.appendingPathComponent("out/pipe").path, 0o644) == 0)
        try dir.write("""
        pipeline: grace
        sources:
          s: { stdin: {} }
        sinks:
          stuck: { from: s, file: { path: ../out/pipe } }
          plain: { from: s, file: { path: ../out/plain.jsonl } }
        settings: { grace: \(grace) }
        """, to: "pipelines/p.yaml")
        let running = SluiceBinary.start(["run", "pipelines/p.yaml"], cwd: dir)
        try running.process.run()
        running.stdin.fileHandleForWriting.write(Data((1...5).map { #"{"n":\#($0)}"# + "\n" }.joined().utf8))
        return (dir, running)
    }

    @Test func pastTheGracePeriodItExitsOneNamingTheStalledSink() async throws {
        let (dir, running) = try stalledPipeline(grace: "1s")
        #expect(await eventually { dir.lines("out/plain.jsonl").count == 5 })
        let started = ContinuousClock.now
        kill(running.process.processIdentifier, SIGTERM)
        let result = try await offPool { running.finish() }
        let took = ContinuousClock.now - started
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("the grace period (1s) passed"), "\(result.stderr)")
        #expect(result.stderr.contains("stuck (5 queued)") || result.stderr.contains("stuck ("), "\(result.stderr)")
        #expect(took < .seconds(30), "exited after \(took)")
        #expect(took >= .milliseconds(900), "waited for the grace period")
    }

    @Test func aSecondSignalForcesTheExitAtOnce() async throws {
        let (dir, running) = try stalledPipeline(grace: "1h")
        #expect(await eventually { dir.lines("out/plain.jsonl").count == 5 })
        kill(running.process.processIdentifier, SIGTERM)
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        kill(running.process.processIdentifier, SIGINT)
        let result = try await offPool { running.finish() }
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("a second SIGINT"), "\(result.stderr)")
        #expect(result.stderr.contains("stuck"), "\(result.stderr)")
        #expect(ContinuousClock.now - started < .seconds(30), "not the 1 h grace period")
    }
}
