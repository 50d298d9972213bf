import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceSpec

/// In-process runs of real pipelines with in-memory inputs and captured sinks.
@Suite struct PipelineTests {
    /// A scratch UDF directory holding `files`, and a spec loaded from `yaml` beside it.
    func spec(_ yaml: String, udfs files: [String: String] = [:]) throws -> PipelineSpec {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-rt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("udfs"), withIntermediateDirectories: true)
        for (name, text) in files { try Data(text.utf8).write(to: dir.appendingPathComponent("udfs/\(name)")) }
        return try SpecLoader.load(text: yaml, file: "p.yaml", directory: dir.appendingPathComponent("pipelines").path, environment: [:])
    }

    func run(_ spec: PipelineSpec, _ input: [String: [String]]) throws -> RunReport {
        let events = input.mapValues { $0.enumerated().map { Event($1, position: Int64($0 + 1)) } }
        return try Pipeline(spec: spec, options: RunOptions(sourceOverrides: events, captureSinks: true, log: { _, _ in })).run()
    }

    func texts(_ r: RunReport, _ sink: String) -> [String] { (r.captured[sink] ?? []).map { String(decoding: $0, as: UTF8.self) } }

    @Test func flatMapAndEmitProduceEveryOutputInOrder() throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        transforms:
          split: { from: s, flat_map: { udf: m.split } }
          echo: { from: split, map: { udf: m.echo } }
        sinks: { o: { from: echo, stdout: {} } }
        settings: { workers: 2, batch_size: 3 }
        """, udfs: ["m.lua": """
        local M = {}
        function M.split(e, ctx)
          local out = array()
          for _, t in ipairs(e.tags) do out[#out + 1] = { id = e.id, tag = t } end
          return out
        end
        function M.echo(e, ctx)
          if e.tag == "x" then ctx.emit({ id = e.id, tag = "x-copy" }) end
          return e
        end
        return M
        """])
        let r = try run(s, ["s": [#"{"id":1,"tags":["a","x"]}"#, #"{"id":2,"tags":[]}"#, #"{"id":3,"tags":["b"]}"#]])
        #expect(texts(r, "o") == [#"{"id":1,"tag":"a"}"#, #"{"id":1,"tag":"x"}"#, #"{"id":1,"tag":"x-copy"}"#, #"{"id":3,"tag":"b"}"#])
    }

    @Test func oneTransformFansOutToSeveralSinksWithRouting() throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        transforms:
          t: { from: s, filter: 'event.n > 0' }
        sinks:
          all: { from: t, stdout: {} }
          big: { from: t, when: { n: { gte: 10 } }, stdout: {} }
          odd: { from: t, when: 'event.n % 2 == 1', stdout: {} }
        """)
        let r = try run(s, ["s": [#"{"n":0}"#, #"{"n":1}"#, #"{"n":10}"#, #"{"n":11}"#]])
        #expect(texts(r, "all") == [#"{"n":1}"#, #"{"n":10}"#, #"{"n":11}"#])
        #expect(texts(r, "big") == [#"{"n":10}"#, #"{"n":11}"#])
        #expect(texts(r, "odd") == [#"{"n":1}"#, #"{"n":11}"#])
        #expect(r.counts["t"]?.received == 4)
        #expect(r.counts["t"]?.emitted == 3)
    }

    @Test func twoMutatingBranchesEachSeeTheOriginalEvent() throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        transforms:
          a: { from: s, map: { udf: m.a } }
          b: { from: s, map: { udf: m.b } }
        sinks:
          oa: { from: a, stdout: {} }
          ob: { from: b, stdout: {} }
          raw: { from: s, stdout: {} }
        """, udfs: ["m.lua": "local M = {}\nfunction M.a(e) e.a = true; return e end\nfunction M.b(e) e.b = true; return e end\nreturn M\n"])
        let r = try run(s, ["s": [#"{"x":1}"#]])
        #expect(texts(r, "oa") == [#"{"a":true,"x":1}"#])
        #expect(texts(r, "ob") == [#"{"b":true,"x":1}"#])
        #expect(texts(r, "raw") == [#"{"x":1}"#])
    }

    @Test func aMemoryBombIsDeadLetteredAndTheNextEventStillRuns() throws {
        let s = try spec("""
        udfs: { limits: { memory: 8MiB } }
        sources: { s: { stdin: {} } }
        transforms: { t: { from: s, map: { udf: m.f } } }
        sinks: { o: { from: t, stdout: {} } }
        """, udfs: ["m.lua": """
        local M = {}
        function M.f(e)
          if e.bomb then local t = {} for i = 1, 1e8 do t[i] = string.rep("x", 100) .. i end end
          e.ok = true
          return e
        end
        return M
        """])
        let r = try run(s, ["s": [#"{"n":1}"#, #"{"n":2,"bomb":true}"#, #"{"n":3}"#]])
        #expect(texts(r, "o") == [#"{"n":1,"ok":true}"#, #"{"n":3,"ok":true}"#])
        let dead = texts(r, "dead_letter")
        #expect(dead.count == 1)
        #expect(dead.first?.contains("memory") == true)
    }

    @Test func declarativeChainsAfterLuaSeeTheMappedEvent() throws {
        let s = try spec("""
        sources: { s: { stdin: {} } }
        transforms:
          m: { from: s, map: { udf: m.f } }
          keep: { from: m, filter: { match: { doubled: { gt: 4 } } } }
          shape: { from: keep, project: [doubled] }
        sinks: { o: { from: shape, stdout: {} } }
        """, udfs: ["m.lua": "local M = {}\nfunction M.f(e) e.doubled = e.n * 2; return e end\nreturn M\n"])
        let r = try run(s, ["s": [#"{"n":1}"#, #"{"n":3}"#, #"{"n":5}"#]])
        #expect(texts(r, "o") == [#"{"doubled":6}"#, #"{"doubled":10}"#])
    }

    @Test func queueOverflowWithDeadLetterPolicyLosesNothing() throws {
        // A capture sink never stalls, so overflow is forced with a capacity smaller than a batch
        // arriving while the queue holds another one; count conservation is what matters here.
        let s = try spec("""
        sources: { s: { stdin: {} } }
        sinks: { o: { from: s, stdout: {}, queue: { capacity: 1, when_full: dead_letter } } }
        settings: { batch_size: 1 }
        """)
        let input = (0..<2000).map { #"{"n":\#($0)}"# }
        let r = try run(s, ["s": input])
        let written = texts(r, "o")
        let dead = texts(r, "dead_letter")
        #expect(written.count + dead.count == input.count)
        #expect(dead.allSatisfy { $0.contains("queue full") })
    }

    /// A fused declarative chain into one sink writes straight into the sink's batch; a second
    /// sink on the chain takes the event-by-event path. Both give the same outputs in the same
    /// order, the same dead letters and the same counts, across batch boundaries.
    @Test func aChainIntoOneSinkCountsAndDeadLettersLikeTheGeneralPath() throws {
        let input = [#"{"k":"a","n":5,"x":{"y":1}}"#, #"{"k":"b","n":6}"#, #"{"k":"a","n":"#,
                     #"{"k":"a","n":7,"pad":"\#(String(repeating: "z", count: 200))"}"#, "[1]",
                     #"{"k":"a","n":8}"#, #"{"k":"a","n":9,"x":{"y":2}}"#]
        func runIt(extraSink: Bool) throws -> RunReport {
            try run(spec("""
            sources: { s: { stdin: {} } }
            transforms:
              keep: { from: s, filter: { match: { k: a } } }
              shape: { from: keep, project: { n: n, y: x.y } }
            sinks:
              o: { from: shape, stdout: {} }
            \(extraSink ? "  o2: { from: shape, stdout: {} }" : "")
            settings: { batch_size: 3, max_event_bytes: 100 }
            """), ["s": input])
        }
        let direct = try runIt(extraSink: false), general = try runIt(extraSink: true)
        #expect(texts(direct, "o") == [#"{"n":5,"y":1}"#, #"{"n":8}"#, #"{"n":9,"y":2}"#])
        #expect(texts(general, "o") == texts(direct, "o"))
        let reasons = { (r: RunReport) in try (r.captured["dead_letter"] ?? []).map {
            (try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])?["reason"] as? String ?? "" } }
        let dead = try reasons(direct)
        #expect(dead.count == 3, "\(dead)")
        #expect(dead.first?.hasPrefix("invalid JSON") == true && dead[1].hasPrefix("too_large") && dead[2].hasPrefix("invalid JSON"), "\(dead)")
        #expect(try reasons(general) == dead)
        for name in ["s", "keep", "shape"] {
            #expect(direct.counts[name]?.received == general.counts[name]?.received, "\(name)")
            #expect(direct.counts[name]?.emitted == general.counts[name]?.emitted, "\(name)")
            #expect(direct.counts[name]?.deadLettered == general.counts[name]?.deadLettered, "\(name)")
        }
        #expect(direct.counts["s"]?.received == 7)
        #expect(direct.counts["shape"]?.emitted == 3)
        #expect(direct.counts["o"]?.received == 3)
        #expect(general.counts["o"]?.received == 3)
    }


    /// Lua filters and maps in a line into one sink run in a loop of their own; a second sink on
    /// the last step takes the general walk. Both give the same outputs, dead letters and counts,
    /// whatever each step does with an event.
    @Test func aLuaLineIntoOneSinkCountsAndDeadLettersLikeTheGeneralPath() throws {
        let udf = """
        local M = {}
        function M.keep(e) if e.boom then error("filter boom") end return e.k ~= "drop" end
        function M.shape(e, ctx)
          if e.k == "nil" then return nil end
          if e.k == "str" then return "not an event" end
          if e.k == "err" then error("map boom") end
          if e.k == "two" then ctx.emit({ n = e.n, copy = true }) end
          return { n = e.n, k = e.k }
        end
        function M.small(e) return e.n ~= 4 end
        function M.tag(e) return { n = e.n, tagged = true } end
        return M
        """
        let input = [#"{"k":"a","n":1}"#, #"{"k":"drop","n":2}"#, #"{"k":"a","n":"#, "[1,2]", #"{"boom":true,"n":3}"#,
                     #"{"k":"nil","n":4}"#, #"{"k":"str","n":5}"#, #"{"k":"err","n":6}"#, #"{"k":"two","n":7}"#,
                     #"{"k":"a","n":4}"#, #"{"k":"big","n":8,"pad":"\#(String(repeating: "z", count: 200))"}"#,
                     #"{"k":"b","n":9}"#]
        func runIt(extraSink: Bool) throws -> RunReport {
            try run(spec("""
            sources: { s: { stdin: {} } }
            transforms:
              keep: { from: s, filter: { udf: m.keep } }
              shape: { from: keep, map: { udf: m.shape } }
              small: { from: shape, filter: { udf: m.small } }
              tag: { from: small, map: { udf: m.tag } }
            sinks:
              o: { from: tag, stdout: {} }
            \(extraSink ? "  o2: { from: tag, stdout: {} }" : "")
            settings: { batch_size: 4, max_event_bytes: 100 }
            """, udfs: ["m.lua": udf]), ["s": input])
        }
        let line = try runIt(extraSink: false), general = try runIt(extraSink: true)
        #expect(texts(line, "o") == [#"{"n":1,"tagged":true}"#, #"{"n":7,"tagged":true}"#, #"{"n":7,"tagged":true}"#,
                                     #"{"n":9,"tagged":true}"#])
        #expect(texts(general, "o") == texts(line, "o"))
        let letters = { (r: RunReport) in try (r.captured["dead_letter"] ?? []).map { bytes -> String in
            let o = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            return "\(o?["component"] ?? ""): \((o?["reason"] as? String ?? "").prefix(40))"
        } }
        let dead = try letters(line)
        #expect(dead.count == 6, "\(dead)")
        #expect(try letters(general) == dead)
        for name in ["s", "keep", "shape", "small", "tag", "o"] {
            #expect(line.counts[name]?.received == general.counts[name]?.received, "\(name)")
            #expect(line.counts[name]?.emitted == general.counts[name]?.emitted, "\(name)")
            #expect(line.counts[name]?.deadLettered == general.counts[name]?.deadLettered, "\(name)")
        }
        #expect(line.counts["s"]?.received == 12)
        #expect(line.counts["tag"]?.emitted == 4)
        #expect(line.counts["o"]?.received == 4)
    }

}
