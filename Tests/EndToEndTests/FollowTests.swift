import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `follow: true` behaves like `tail -F`: a truncated file is read again from its start, a
/// renamed (rotated) one is finished and then the new file at the path is opened.
@Suite struct FollowTests {
    static let spec = """
    pipeline: follow
    sources:
      s: { file: { path: ../data/in.jsonl, follow: true } }
    sinks:
      o: { from: s, file: { path: ../out/o.jsonl } }
    dead_letter:
      file: { path: ../out/dead.jsonl }
    settings: { batch_size: 1 }
    """

    static func append(_ line: String, to path: String) throws {
        let h = try #require(FileHandle(forWritingAtPath: path))
        h.seekToEndOfFile()
        h.write(Data((line + "\n").utf8))
        try h.close()
    }

    /// Starts `sluice run` on the follow spec in a fresh scratch directory.
    static func start(initial: [String]) throws -> (URL, SluiceBinary.Running) {
        let dir = try SluiceBinary.scratch()
        try dir.write(spec, to: "pipelines/p.yaml")
        try dir.write(initial.map { $0 + "\n" }.joined(), to: "data/in.jsonl")
        let running = SluiceBinary.start(["run", "pipelines/p.yaml"], cwd: dir)
        try running.process.run()
        try running.stdin.fileHandleForWriting.close()
        return (dir, running)
    }

    static func stop(_ running: SluiceBinary.Running) async throws -> SluiceBinary.Result {
        running.process.terminate()
        return try await offPool { running.finish() }
    }

    @Test func aTruncatedFileIsReadAgainFromItsStart() async throws {
        let old = (1...3).map { #"{"n":\#($0),"pad":"xxxxxxxxxxxxxxxxxxxx"}"# }
        let (dir, running) = try Self.start(initial: old)
        let path = dir.appendingPathComponent("data/in.jsonl").path
        #expect(await eventually { dir.lines("out/o.jsonl").count == 3 })

        // Truncate and write shorter content, as `: > file` followed by a new writer does.
        #expect(truncate(path, 0) == 0)
        try Self.append(#"{"n":10}"#, to: path)
        try Self.append(#"{"n":11}"#, to: path)
        let got = await eventually { dir.lines("out/o.jsonl").count == 5 }
        let result = try await Self.stop(running)
        #expect(got, "\(dir.lines("out/o.jsonl")) \(result.stderr)")
        #expect(dir.lines("out/o.jsonl") == old + [#"{"n":10}"#, #"{"n":11}"#])
        #expect(dir.lines("out/dead.jsonl").isEmpty, "\(dir.lines("out/dead.jsonl"))")
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func aRotatedFileIsFinishedThenTheNewOneIsRead() async throws {
        let (dir, running) = try Self.start(initial: [#"{"n":1}"#, #"{"n":2}"#])
        let path = dir.appendingPathComponent("data/in.jsonl").path
        #expect(await eventually { dir.lines("out/o.jsonl").count == 2 })

        // The writer appends a last line, the file is renamed away, and a new file takes the path.
        try Self.append(#"{"n":3}"#, to: path)
        #expect(rename(path, path + ".1") == 0)
        try dir.write(#"{"n":4}"# + "\n" + #"{"n":5}"# + "\n", to: "data/in.jsonl")
        let got = await eventually { dir.lines("out/o.jsonl").count == 5 }
        // And the new file keeps being followed.
        try Self.append(#"{"n":6}"#, to: path)
        let more = await eventually { dir.lines("out/o.jsonl").count == 6 }
        let result = try await Self.stop(running)
        #expect(got && more, "\(dir.lines("out/o.jsonl")) \(result.stderr)")
        #expect(dir.lines("out/o.jsonl") == (1...6).map { #"{"n":\#($0)}"# })
        #expect(dir.lines("out/dead.jsonl").isEmpty)
        #expect(result.status == 0, "\(result.stderr)")
    }

    @Test func aFileRemovedAndRecreatedIsPickedUp() async throws {
        let (dir, running) = try Self.start(initial: [#"{"n":1}"#])
        let path = dir.appendingPathComponent("data/in.jsonl").path
        #expect(await eventually { dir.lines("out/o.jsonl").count == 1 })
        #expect(unlink(path) == 0)
        try dir.write(#"{"n":2}"# + "\n", to: "data/in.jsonl")
        let got = await eventually { dir.lines("out/o.jsonl").count == 2 }
        let result = try await Self.stop(running)
        #expect(got, "\(dir.lines("out/o.jsonl")) \(result.stderr)")
        #expect(dir.lines("out/o.jsonl") == [#"{"n":1}"#, #"{"n":2}"#])
        #expect(result.status == 0, "\(result.stderr)")
    }
}
