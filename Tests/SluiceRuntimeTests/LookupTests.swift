import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceSpec
import SluiceLua
import Synchronization

/// File lookups read by `ctx.lookup` from real JSONL and CSV files.
@Suite struct LookupTests {
    /// A scratch directory with `udfs/`, `data/` files and a spec in `pipelines/`.
    func spec(_ yaml: String, udfs: [String: String], data: [String: String]) throws -> (PipelineSpec, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-lk-\(UUID().uuidString)")
        for sub in ["udfs", "data", "pipelines"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        for (name, text) in udfs { try Data(text.utf8).write(to: dir.appendingPathComponent("udfs/\(name)")) }
        for (name, text) in data { try Data(text.utf8).write(to: dir.appendingPathComponent("data/\(name)")) }
        let s = try SpecLoader.load(text: yaml, file: "p.yaml", directory: dir.appendingPathComponent("pipelines").path, environment: [:])
        return (s, dir)
    }

    func run(_ spec: PipelineSpec, _ input: [String]) throws -> RunReport {
        let events = ["s": input.enumerated().map { Event($1, position: Int64($0 + 1)) }]
        return try Pipeline(spec: spec, options: RunOptions(sourceOverrides: events, captureSinks: true, log: { _, _ in })).run()
    }

    func texts(_ r: RunReport, _ sink: String) -> [String] { (r.captured[sink] ?? []).map { String(decoding: $0, as: UTF8.self) } }

    static let enrich = ["e.lua": """
    local M = {}
    function M.title(e, ctx)
      local t = ctx.lookup("titles", e.title_id)
      e.name = t and t.name or "unknown"
      return e
    end
    return M
    """]

    static func yaml(_ file: String) -> String {
        """
        lookups: { titles: { file: { path: ../data/\(file), key: id } } }
        sources: { s: { stdin: {} } }
        transforms: { t: { from: s, map: { udf: e.title } } }
        sinks: { o: { from: t, stdout: {} } }
        settings: { workers: 2 }
        """
    }

    @Test func jsonLinesLookupWithNumericAndStringKeys() throws {
        // Keys compare as strings: the file's 7 is found by "7" and by 7; "8" by 8.
        let (s, _) = try spec(Self.yaml("t.jsonl"), udfs: Self.enrich,
                              data: ["t.jsonl": "{\"id\":7,\"name\":\"Seven\"}\n\n{\"id\":\"8\",\"name\":\"Eight\",\"tags\":[1,null]}\r\n"])
        let r = try run(s, [#"{"title_id":7}"#, #"{"title_id":"7"}"#, #"{"title_id":8}"#, #"{"title_id":9}"#, #"{"title_id":7.0}"#])
        #expect(texts(r, "o") == [#"{"name":"Seven","title_id":7}"#, #"{"name":"Seven","title_id":"7"}"#,
                                  #"{"name":"Eight","title_id":8}"#, #"{"name":"unknown","title_id":9}"#, #"{"name":"Seven","title_id":7.0}"#])
    }

    @Test func csvLookupWithQuotedFields() throws {
        let csv = "id,name,year\r\n7,\"Seven, the \"\"film\"\"\",1995\r\n8,\"Two\nlines\",2001\r\n"
        let (s, _) = try spec(Self.yaml("t.csv"), udfs: ["e.lua": """
        local M = {}
        function M.title(e, ctx)
          local t = ctx.lookup("titles", e.title_id)
          if t then e.name = t.name; e.year = t.year end
          return e
        end
        return M
        """], data: ["t.csv": csv])
        let r = try run(s, [#"{"title_id":7}"#, #"{"title_id":"8"}"#, #"{"title_id":1}"#])
        #expect(texts(r, "o") == [#"{"name":"Seven, the \"film\"","title_id":7,"year":"1995"}"#,
                                  #"{"name":"Two\nlines","title_id":"8","year":"2001"}"#, #"{"title_id":1}"#])
    }

    @Test func unknownLookupNameDeadLettersTheEvent() throws {
        let (s, _) = try spec(Self.yaml("t.jsonl"), udfs: ["e.lua": """
        local M = {}
        function M.title(e, ctx) return ctx.lookup("nope", 1) end
        return M
        """], data: ["t.jsonl": "{\"id\":1}\n"])
        let r = try run(s, [#"{"title_id":1}"#])
        #expect(texts(r, "o").isEmpty)
        #expect(texts(r, Pipeline.deadLetterName).first?.contains("no lookup named 'nope'") == true)
    }

    @Test func malformedFileAtStartNamesFileAndLine() throws {
        for (file, text, expected) in [
            ("t.jsonl", "{\"id\":1}\n{\"id\":2,}\n", "t.jsonl:2: invalid JSON"),
            ("t.jsonl", "{\"id\":1}\n{\"name\":2}\n", "t.jsonl:2: the row has no key field 'id'"),
            ("t.csv", "id,name\n1,a\n2\n", "t.csv:3: expected 2 fields, found 1"),
            ("t.csv", "name\na\n", "t.csv:1: the header has no key column 'id'"),
        ] {
            let (s, _) = try spec(Self.yaml(file), udfs: Self.enrich, data: [file: text])
            #expect(throws: PipelineError.self) { _ = try Pipeline(spec: s) }
            do { _ = try Pipeline(spec: s) } catch {
                #expect(error.description.contains(expected), "\(error.description)")
                #expect(error.description.hasPrefix("p.yaml:1:12: lookup 'titles': "), "\(error.description)")
            }
        }
        let (s, _) = try spec(Self.yaml("missing.csv"), udfs: Self.enrich, data: [:])
        do { _ = try Pipeline(spec: s); Issue.record("no error") } catch {
            #expect(error.description.contains("missing.csv: cannot read the file"))
        }
    }

    @Test func refreshSwapsAndAFailedRefreshKeepsTheOldTable() throws {
        let (s, dir) = try spec(Self.yaml("t.jsonl"), udfs: Self.enrich, data: ["t.jsonl": "{\"id\":1,\"name\":\"a\"}\n"])
        let logs = Mutex<[String]>([])
        let registry = try LookupRegistry(s.lookups, log: { level, m in logs.withLock { $0.append("\(level): \(m)") } })
        #expect(registry.lookupRow(table: "titles", key: "1").rowText == #"{"id":1,"name":"a"}"#)
        let path = dir.appendingPathComponent("data/t.jsonl").path
        try Data("{\"id\":1,\"name\":\"b\"}\n{\"id\":2}\n".utf8).write(to: URL(fileURLWithPath: path))
        registry.tables["titles"]!.refresh(log: { _, _ in })
        #expect(registry.lookupRow(table: "titles", key: "1").rowText == #"{"id":1,"name":"b"}"#)
        try Data("{\"id\":1,\"name\":\"c\"}\nnot json\n".utf8).write(to: URL(fileURLWithPath: path))
        registry.tables["titles"]!.refresh(log: { level, m in logs.withLock { $0.append("\(level): \(m)") } })
        #expect(registry.lookupRow(table: "titles", key: "1").rowText == #"{"id":1,"name":"b"}"#)
        #expect(registry.lookupRow(table: "titles", key: "3").rowText == nil)
        #expect(logs.withLock { $0 }.first?.hasPrefix("error: lookup 'titles': refresh failed, keeping the previous table (2 rows): ") == true)
        #expect(registry.readiness.first?.contains("t.jsonl:2: invalid JSON") == true)
        let metrics = registry.metrics(pipelineLabel: "pipeline=\"p\"", escape: { $0 }).joined(separator: "\n")
        #expect(metrics.contains("sluice_lookup_refresh_failures_total{pipeline=\"p\",lookup=\"titles\"} 1"))
        #expect(metrics.contains("sluice_lookup_rows{pipeline=\"p\",lookup=\"titles\"} 2"))
        #expect(metrics.contains("sluice_lookup_hits_total{pipeline=\"p\",lookup=\"titles\"} 3"))
        #expect(metrics.contains("sluice_lookup_misses_total{pipeline=\"p\",lookup=\"titles\"} 1"))
    }

    @Test func csvReaderEdgeCases() throws {
        #expect(try CSVReader.records(Array("\u{FEFF}a,b\n\"\",x\n,\n".utf8)).map(\.fields) == [["a", "b"], ["", "x"], ["", ""]])
        #expect(throws: CSVReader.Failure.self) { try CSVReader.records(Array("a\n\"open\n".utf8)) }
        #expect(throws: CSVReader.Failure.self) { try CSVReader.records(Array("a\n\"x\"y\n".utf8)) }
    }
}

extension LuaLookupAnswer {
    var rowText: String? { if case .row(let b) = self { return String(decoding: b, as: UTF8.self) }; return nil }
}
