import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceSpec

/// A pattern that backtracks for minutes in stock Lua is stopped by the instruction limit: the
/// event is dead-lettered and the pipeline goes on.
@Suite struct RunawayPatternTests {
    @Test func aPathologicalPatternIsDeadLetteredAndTheNextEventRuns() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-pattern-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("udfs"), withIntermediateDirectories: true)
        try Data("""
        local M = {}
        function M.f(e)
          if e.bomb then e.hit = string.find(string.rep("a", 30) .. "b", ("a*"):rep(30) .. "c") end
          e.ok = true
          return e
        end
        return M
        """.utf8).write(to: dir.appendingPathComponent("udfs/m.lua"))
        let spec = try SpecLoader.load(text: """
        sources: { s: { stdin: {} } }
        transforms: { t: { from: s, map: { udf: m.f } } }
        sinks: { o: { from: t, stdout: {} } }
        """, file: "p.yaml", directory: dir.appendingPathComponent("pipelines").path, environment: [:])
        let events = [#"{"n":1}"#, #"{"n":2,"bomb":true}"#, #"{"n":3}"#].enumerated().map { Event($1, position: Int64($0 + 1)) }
        let report = try Pipeline(spec: spec, options: RunOptions(sourceOverrides: ["s": events], captureSinks: true, log: { _, _ in })).run()
        let written = (report.captured["o"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(written == [#"{"n":1,"ok":true}"#, #"{"n":3,"ok":true}"#])
        let dead = (report.captured["dead_letter"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(dead.count == 1)
        #expect(dead.first?.contains("instruction limit exceeded") == true, "\(dead)")
        #expect(dead.first?.contains(#""component":"t""#) == true, "\(dead)")
    }
}
