import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceSpec

/// Errors in inline Lua (`filter: '...'`, `when: '...'`) point at the spec's own `file:line:col`
/// of the expression, not at a chunk name and line the user never wrote.
@Suite struct InlineLuaLocationTests {
    func spec(_ yaml: String) throws -> PipelineSpec {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-inline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("udfs"), withIntermediateDirectories: true)
        return try SpecLoader.load(text: yaml, file: "p.yaml", directory: dir.appendingPathComponent("pipelines").path, environment: [:])
    }

    @Test func aSyntaxErrorInAnInlineFilterPointsAtTheExpression() throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        transforms:
          t: { from: s, filter: 'event.x >' }
        sinks: { o: { from: t, stdout: {} } }
        """)
        let problems = LuaCheck.problems(in: s).map(\.description)
        #expect(problems.count == 1)
        let p = try #require(problems.first)
        #expect(p.hasPrefix("p.yaml:3:25: "), "\(p)")
        #expect(!p.contains("t:2"), "\(p)")
        #expect(!p.contains("near ')'"), "\(p)")
        #expect(p.contains("unexpected symbol"), "\(p)")
    }

    @Test func aLineInsideAMultiLineExpressionIsNamed() throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        transforms:
          t:
            from: s
            filter: |
              event.x == 1 and
              event.y ==== 2
        sinks: { o: { from: t, stdout: {} } }
        """)
        let p = try #require(LuaCheck.problems(in: s).first?.description)
        #expect(p.hasPrefix("p.yaml:5:"), "\(p)")
        #expect(p.contains("line 2 of the expression"), "\(p)")
    }

    @Test func aRuntimeErrorInAnInlineWhenPointsAtTheExpression() throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        sinks: { o: { from: s, stdout: {}, when: 'event.y.z == 1' } }
        """)
        let events = ["s": [Event(#"{"y":1}"#, position: 1)]]
        let r = try Pipeline(spec: s, options: RunOptions(sourceOverrides: events, captureSinks: true, log: { _, _ in })).run()
        let dead = try #require(r.captured["dead_letter"]?.first.map { String(decoding: $0, as: UTF8.self) })
        let record = try #require(try JSONSerialization.jsonObject(with: Data(dead.utf8)) as? [String: Any])
        let reason = try #require(record["reason"] as? String)
        #expect(reason == "p.yaml:2:42: attempt to index a number value (field 'y')", "\(dead)")
        #expect(!dead.contains("o.when:1"), "\(dead)")
    }
}
