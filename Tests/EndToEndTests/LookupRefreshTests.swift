import Foundation
import Testing

/// A running pipeline picks up a changed lookup file (by `refresh:` interval or inotify `watch`),
/// and keeps the old table when the new file is malformed.
@Suite struct LookupRefreshTests {
    static func spec(_ refresh: String) -> String {
        """
        pipeline: lk
        lookups:
          titles: { file: { path: ../data/titles.csv, key: title_id }, refresh: \(refresh) }
        sources:
          s: { file: { path: ../data/in.jsonl, follow: true } }
        transforms:
          t: { from: s, map: { udf: e.title } }
        sinks:
          o: { from: t, file: { path: ../out/o.jsonl } }
        dead_letter:
          file: { path: ../out/dead.jsonl }
        settings: { batch_size: 1 }
        """
    }

    static let udf = """
    local M = {}
    function M.title(e, ctx)
      local t = ctx.lookup("titles", e.title_id)
      e.name = t and t.name or "?"
      return e
    end
    return M
    """

    /// Writes the table to a temporary name and renames it over the real one (never half-written).
    static func replace(_ dir: URL, _ text: String) throws {
        try dir.write(text, to: "data/titles.csv.tmp")
        guard rename(dir.appendingPathComponent("data/titles.csv.tmp").path, dir.appendingPathComponent("data/titles.csv").path) == 0 else {
            throw CocoaError(.fileWriteUnknown)
        }
    }

    static func append(_ line: String, to path: String) throws {
        let h = try #require(FileHandle(forWritingAtPath: path))
        h.seekToEndOfFile()
        h.write(Data((line + "\n").utf8))
        try h.close()
    }

    func check(refresh: String) async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write(Self.spec(refresh), to: "pipelines/p.yaml")
        try dir.write(Self.udf, to: "udfs/e.lua")
        try dir.write("title_id,name\n1,Old\n", to: "data/titles.csv")
        try dir.write(#"{"title_id":1}"# + "\n", to: "data/in.jsonl")
        let run = try ReloadingRun(dir: dir)   // streams stderr, so a test can wait for a log line
        run.closeStdin()
        let input = dir.appendingPathComponent("data/in.jsonl").path
        #expect(await eventually { dir.lines("out/o.jsonl") == [#"{"name":"Old","title_id":1}"#] })

        try Self.replace(dir, "title_id,name\n1,New\n2,Two\n")
        // Poll: feed an event until one shows the new table (old table until then, never a mix).
        // Bounded by attempts, not by a deadline: a test starved of its thread by the other tests
        // running in parallel would otherwise reach a deadline after one early attempt.
        var ok = false
        for n in 1...150 where !ok {
            try Self.append(#"{"title_id":1,"n":\#(n)}"#, to: input)
            try await Task.sleep(for: .milliseconds(100))
            ok = dir.lines("out/o.jsonl").contains { $0.contains("New") }
        }
        #expect(ok, "\(run.stderrLines)")
        #expect(dir.lines("out/o.jsonl").allSatisfy { $0.contains("Old") || $0.contains("New") })

        // A malformed refresh keeps the table in use.
        try Self.replace(dir, "title_id,name\n1,Broken\n2\n")
        #expect(await run.waitForStderr { $0.contains { $0.contains("lookup 'titles': refresh failed, keeping the previous table (2 rows)") } },
                "\(run.stderrLines)")
        try Self.append(#"{"title_id":2,"after":"broken"}"#, to: input)
        #expect(await eventually { dir.lines("out/o.jsonl").last == #"{"after":"broken","name":"Two","title_id":2}"# })
        run.send(SIGTERM)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(stderr.contains("titles.csv:3: expected 2 fields, found 1"), "\(stderr)")
        #expect(dir.lines("out/dead.jsonl").isEmpty)
    }

    @Test func anIntervalRefreshSwapsTheTableWhileRunning() async throws { try await check(refresh: "200ms") }
    @Test func aWatchedFileIsReloadedOnRenameOver() async throws { try await check(refresh: "watch") }
}
