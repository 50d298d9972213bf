import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceSpec

/// Events on a JSON stream are objects: a UDF that returns anything else has the event
/// dead-lettered with the transform's (or generator's) name, never written or silently dropped.
@Suite struct EventShapeTests {
    func spec(_ yaml: String, udfs files: [String: String] = [:]) throws -> PipelineSpec {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-shape-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("udfs"), withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent("udfs/\(name)")) }
        return try SpecLoader.load(text: yaml, file: "p.yaml", directory: dir.appendingPathComponent("pipelines").path, environment: [:])
    }

    func run(_ spec: PipelineSpec, _ input: [String: [String]]? = nil) throws -> RunReport {
        let events = input?.mapValues { $0.enumerated().map { Event($1, position: Int64($0 + 1)) } }
        return try Pipeline(spec: spec, options: RunOptions(sourceOverrides: events, captureSinks: true, log: { _, _ in })).run()
    }

    func texts(_ r: RunReport, _ sink: String) -> [String] { (r.captured[sink] ?? []).map { String(decoding: $0, as: UTF8.self) } }

    func deadLetters(_ r: RunReport) throws -> [[String: Any]] {
        try texts(r, "dead_letter").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    static let udfs = ["m.lua": """
    local M = {}
    function M.string(e) return "hello" end
    function M.list(e) return {1, 2, 3} end
    function M.empty_array(e) return array() end
    function M.ok(e) e.ok = true; return e end
    function M.emit_string(e, ctx) ctx.emit("side"); return e end
    function M.hash(e) return { a = 1 } end
    function M.mixed(e) return { { a = 1 }, "x" } end
    function M.nested_list(e) return { { 1, 2 } } end
    function M.list_ok(e) return { { a = 1 }, { b = 2 } } end
    function M.upper(e) return string.upper(e) end
    function M.gen(e)
      if e.seq == 2 then error("generator broke") end
      if e.seq == 3 then return 42 end
      if e.seq == 4 then return "text" end
      return { n = e.seq }
    end
    return M
    """]

    @Test(arguments: ["string", "list", "empty_array", "emit_string"])
    func aMapReturningANonObjectIsDeadLetteredWithTheTransformName(fn: String) throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        transforms: { shape: { from: s, map: { udf: m.\(fn) } } }
        sinks: { o: { from: shape, stdout: {} } }
        """, udfs: Self.udfs)
        let r = try run(s, ["s": [#"{"n":1}"#]])
        #expect(texts(r, "o").isEmpty, "\(texts(r, "o"))")
        let dead = try deadLetters(r)
        #expect(dead.count == 1)
        #expect(dead.first?["component"] as? String == "shape")
        #expect((dead.first?["reason"] as? String)?.contains("object") == true, "\(dead)")
        #expect(dead.first?["event"] as? String == #"{"n":1}"#)
        #expect(r.counts["shape"]?.deadLettered == 1)
    }

    @Test(arguments: ["hash", "mixed", "nested_list"])
    func aFlatMapReturningANonListOrNonObjectsIsDeadLettered(fn: String) throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        transforms: { split: { from: s, flat_map: { udf: m.\(fn) } } }
        sinks: { o: { from: split, stdout: {} } }
        """, udfs: Self.udfs)
        let r = try run(s, ["s": [#"{"n":1}"#]])
        #expect(texts(r, "o").isEmpty, "\(texts(r, "o"))")
        let dead = try deadLetters(r)
        #expect(dead.count == 1, "\(dead)")
        #expect(dead.first?["component"] as? String == "split")
    }

    @Test func wellFormedResultsStillFlow() throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        transforms:
          a: { from: s, map: { udf: m.ok } }
          b: { from: a, flat_map: { udf: m.list_ok } }
        sinks: { o: { from: b, stdout: {} } }
        """, udfs: Self.udfs)
        let r = try run(s, ["s": [#"{"n":1}"#]])
        #expect(texts(r, "o") == [#"{"a":1}"#, #"{"b":2}"#])
        #expect(texts(r, "dead_letter").isEmpty)
    }

    @Test func textStreamsMayStillCarryStrings() throws {
        let s = try spec("""
        sources: { s: { stdin: {}, format: text } }
        transforms: { up: { from: s, map: { udf: m.upper } } }
        sinks: { o: { from: up, stdout: {}, format: text } }
        """, udfs: Self.udfs)
        let r = try run(s, ["s": ["hello", "world"]])
        #expect(texts(r, "o") == ["HELLO", "WORLD"])
        #expect(texts(r, "dead_letter").isEmpty)
    }

    @Test func aGeneratorThatErrorsOrReturnsANonObjectIsDeadLettered() throws {
        let s = try spec("""
        sources: { g: { generate: { count: 5, udf: m.gen } } }
        sinks: { o: { from: g, stdout: {} } }
        """, udfs: Self.udfs)
        let r = try run(s)
        #expect(texts(r, "o") == [#"{"n":1}"#, #"{"n":5}"#])
        let dead = try deadLetters(r)
        #expect(dead.count == 3, "\(dead)")
        #expect(dead.allSatisfy { $0["component"] as? String == "g" })
        #expect(dead.map { $0["position"] as? Int } == [2, 3, 4])
        #expect((dead.first?["reason"] as? String)?.contains("generator broke") == true, "\(dead)")
        #expect(dead.map { $0["event"] as? String } == [#"{"seq":2}"#, #"{"seq":3}"#, #"{"seq":4}"#])
        #expect(r.counts["g"]?.deadLettered == 3)
    }
}
