import Foundation
import Testing

/// The CLI contract the README documents: `--version`, exit codes, and logs that stay readable
/// when a sink fails for every batch.
@Suite struct CLIContractTests {
    @Test func versionPrintsTheVersionAndExits0() async throws {
        let r = try await SluiceBinary.runAsync(["--version"])
        #expect(r.status == 0, "\(r.stderr)")
        let version = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(version.split(separator: ".").count == 3, "\(r.stdout)")
        #expect(version.allSatisfy { $0.isNumber || $0 == "." }, "\(r.stdout)")
    }

    @Test(arguments: [["run"], ["frobnicate"], ["run", "--no-such-flag", "x.yaml"], ["validate"]])
    func argumentErrorsExit2(args: [String]) async throws {
        let r = try await SluiceBinary.runAsync(args)
        #expect(r.status == 2, "\(args): exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("Usage") || r.stderr.contains("Error"), "\(r.stderr)")
    }

    @Test func helpStillExits0() async throws {
        let r = try await SluiceBinary.runAsync(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE"), "\(r.stdout)")
    }

    @Test func aMissingInputFileExits1() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: missing
        sources:
          s: { file: { path: ../data/not-there.jsonl } }
        sinks:
          o: { from: s, stdout: {} }
        """, to: "pipelines/p.yaml")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], cwd: dir)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("not-there.jsonl"), "\(r.stderr)")
    }

    @Test func aSinkFailingEveryBatchLogsASummaryNotALinePerBatch() async throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else { return }
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: full
        sources:
          s: { stdin: {} }
        sinks:
          o: { from: s, file: { path: /dev/full } }
        dead_letter:
          file: { path: ../out/dead.jsonl }
        settings: { batch_size: 1 }
        """, to: "pipelines/p.yaml")
        let input = (1...200).map { #"{"n":\#($0)}"# }.joined(separator: "\n") + "\n"
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], stdin: input, cwd: dir)
        let about = r.stderr.split(separator: "\n").filter { $0.contains("sink 'o'") }
        #expect(about.count >= 1 && about.count <= 3, "\(r.stderr)")
        #expect(about.last?.contains("200 event(s)") == true, "\(r.stderr)")
        #expect(about.last?.contains("No space left on device") == true, "\(r.stderr)")
        #expect(dir.lines("out/dead.jsonl").count == 200)
    }
}

/// The default `max_event_bytes` (1 MiB) applies end to end, through the line reader.
@Suite struct EventSizeEndToEndTests {
    @Test func aTwoMebibyteLineIsDeadLetteredTooLargeAndTheNextLineIsWritten() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: big
        sources:
          s: { file: { path: ../data/in.jsonl } }
        sinks:
          o: { from: s, file: { path: ../out/o.jsonl } }
        dead_letter:
          file: { path: ../out/dead.jsonl }
        """, to: "pipelines/p.yaml")
        let big = #"{"pad":""# + String(repeating: "x", count: 2 << 20) + #""}"#
        try dir.write(#"{"n":1}"# + "\n" + big + "\n" + #"{"n":3}"# + "\n", to: "data/in.jsonl")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let written = dir.lines("out/o.jsonl")
        #expect(written.count == 2 && written.first == #"{"n":1}"# && written.last == #"{"n":3}"#,
                "\(written.map { $0.prefix(40) })")
        let dead = dir.lines("out/dead.jsonl")
        #expect(dead.count == 1, "\(dead.map { $0.prefix(200) })")
        #expect(dead.first?.contains(#""reason":"too_large"#) == true, "\(dead.map { $0.prefix(200) })")
        #expect(dead.first?.contains(#""position":2"#) == true)
        #expect((dead.first?.utf8.count ?? 0) < (1 << 20) + 4096, "the dead letter holds at most the limit of the line")
    }
}
