import Foundation
import Testing

/// The stateful examples run through the built binary over their bundled data; each output is
/// compared with a reference this test computes from the same data (never with the engine's).
@Suite struct StatefulExampleTests {
    func exampleTree() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-stateful-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for sub in ["pipelines", "udfs", "data", "scripts"] {
            try FileManager.default.copyItem(at: SluiceBinary.root.appendingPathComponent(sub), to: dir.appendingPathComponent(sub))
        }
        return dir
    }

    func objects(_ dir: URL, _ path: String) -> [[String: Any]] {
        dir.lines(path).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test func playConversionJoinsEachPlayWithTheImpressionsOfTheHourBefore() async throws {
        let dir = try exampleTree()
        let r = try await SluiceBinary.runAsync(["run", "pipelines/play-conversion.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        // Reference: every impression of the same (profile, title) with play.ts - 1h <= imp.ts <= play.ts.
        let imps = objects(dir, "data/impressions.sample.jsonl")
        let plays = objects(dir, "data/conversion-plays.sample.jsonl")
        var byKey: [String: [[String: Any]]] = [:]
        for i in imps { byKey["\(i["profile_id"]!):\(i["title_id"]!)", default: []].append(i) }
        var expected: [String: Int] = [:]
        for p in plays {
            let ts = p["ts"] as! Int
            let n = (byKey["\(p["profile_id"]!):\(p["title_id"]!)"] ?? []).filter { i in
                let t = i["ts"] as! Int
                return ts - 3_600_000 <= t && t <= ts
            }.count
            if n > 0 { expected[p["event_id"] as! String] = n }
        }
        let got = objects(dir, "out/play-conversion/conversions.jsonl")
        #expect(expected.count > 100)
        #expect(Dictionary(uniqueKeysWithValues: got.map { ($0["event_id"] as! String, $0["impressions"] as! Int) }) == expected)
        #expect(got.count == expected.count)
        #expect(dir.lines("out/play-conversion/dead_letter.jsonl").isEmpty)
    }

    @Test func titleViewsCountsUniquePlaysPerTitleAndMinute() async throws {
        let dir = try exampleTree()
        let r = try await SluiceBinary.runAsync(["run", "pipelines/title-views.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let plays = objects(dir, "data/conversion-plays.sample.jsonl")
        // Reference: no plays are late in this file (out of order by up to 5 s, lateness 10 s); dedup by event_id.
        var seen: [String: Int] = [:]
        var counts: [String: Int] = [:]
        var viewers: [String: Set<String>] = [:]
        for p in plays {
            let id = p["event_id"] as! String, ts = p["ts"] as! Int
            if let k = seen[id], abs(ts - k) <= 600_000 { continue }
            seen[id] = max(seen[id] ?? ts, ts)
            let window = "\(p["title_id"]!)|\(ts / 60_000 * 60_000)"
            counts[window, default: 0] += 1
            viewers[window, default: []].insert(p["profile_id"] as! String)
        }
        let got = objects(dir, "out/title-views/title_views.jsonl")
        var gotCounts: [String: Int] = [:]
        for o in got {
            let w = "\(o["key"]!)|\(o["window_start"]!)"
            gotCounts[w] = o["plays"] as? Int
            #expect(o["viewers"] as? Int == viewers[w]?.count, "\(w)")
        }
        #expect(gotCounts == counts)
        #expect(got.count == counts.count)
    }

    @Test func serviceTopologyMatchesTheEdgesComputedFromTheFlows() async throws {
        let dir = try exampleTree()
        let r = try await SluiceBinary.runAsync(["run", "pipelines/service-topology.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let reference = Process()
        reference.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        reference.arguments = ["python3", "scripts/topology_reference.py", "data/flows.sample.jsonl"]
        reference.currentDirectoryURL = dir
        let pipe = Pipe()
        reference.standardOutput = pipe
        try reference.run()
        let (status, text) = try await offPool { () -> (Int32?, String) in
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            return (waitForExit(reference), text)
        }
        #expect(status == 0)
        func edges(_ lines: [String]) -> [String: String] {
            var out: [String: String] = [:]
            for l in lines {
                guard let o = try? JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any] else { continue }
                out["\(o["src"]!)->\(o["dst"]!)"] = "\(o["flows"]!)/\(o["bytes"]!)"
            }
            return out
        }
        let expected = edges(text.split(separator: "\n").map(String.init))
        #expect(expected.count > 20)
        #expect(edges(dir.lines("out/service-topology/edges.jsonl")) == expected)
        let graph = try await SluiceBinary.runAsync(["graph", "pipelines/service-topology.yaml"], cwd: dir)
        #expect(graph.stdout.contains("stage 3"), "\(graph.stdout)")
    }

    @Test func theRunSummaryCountsLateAndDuplicateEvents() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: summary
        sources: { s: { stdin: {}, time: ts, lateness: 1s } }
        transforms: { u: { dedup: { from: s, key: '{id}', within: 1m } } }
        sinks: { o: { from: u, stdout: {} } }
        dead_letter: { file: { path: ../out/dead.jsonl } }
        """, to: "pipelines/p.yaml")
        let input = [#"{"id":1,"ts":10000}"#, #"{"id":1,"ts":10500}"#, #"{"id":2,"ts":20000}"#, #"{"id":3,"ts":5000}"#].joined(separator: "\n") + "\n"
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], stdin: input, cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutLines == [#"{"id":1,"ts":10000}"#, #"{"id":2,"ts":20000}"#])
        #expect(r.stderr.contains("sluice: summary: read 4 events; wrote o=2; dead-lettered 1; u: 1 late, 1 duplicates dropped"), "\(r.stderr)")
        #expect(dir.lines("out/dead.jsonl").first?.contains(#""reason":"late""#) == true)
    }
}
