import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Hot reload of the `merge` UDF of a join while it runs over two followed files: keyed state (held
/// lefts and `ctx.state`) survives the reload, results after it carry the new version, and SIGTERM
/// flushes what is still held. Checked against a reference join computed here.
@Suite struct StatefulReloadTests {
    static let t0: Int64 = 1_700_000_000_000

    static let spec = """
    pipeline: stateful-reload
    udfs: { reload: watch }
    sources:
      l: { file: { path: ../data/left.jsonl, follow: true }, time: ts, idle: 1h }
      r: { file: { path: ../data/right.jsonl, follow: true }, time: ts, idle: 1h }
    transforms:
      j:
        join:
          left:  { from: l, key: '{k}' }
          right: { from: r, key: '{k}' }
          within: 1h
          merge: { udf: m.merge }
    sinks:
      o: { from: j, file: { path: ../out/o.jsonl } }
    dead_letter:
      file: { path: ../out/dead.jsonl }
    settings: { admin: { listen: '127.0.0.1:0' } }
    """

    /// The merge UDF: counts merges per key in `ctx.state.n`; version 2 also writes `tag`.
    static func udf(tag: String?) -> String {
        """
        local M = {}
        function M.merge(lefts, right, ctx)
          ctx.state.n = (ctx.state.n or 0) + 1
          local ids = {}
          for i, l in ipairs(lefts) do ids[i] = l.id end
          local out = { k = right.k, rid = right.id, lids = table.concat(ids, ","), n = ctx.state.n, v = ctx.version }
          \(tag.map { "out.tag = \"\($0)\"" } ?? "")
          return out
        end
        return M

        """
    }

    struct Ev { var k: String; var id: String; var ts: Int64
        var line: String { #"{"k":"\#(k)","id":"\#(id)","ts":\#(ts)}"# }
    }

    struct Joined: Hashable, CustomStringConvertible {
        var k: String, rid: String, lids: String, n: Int, v: Int, tag: String?
        init(k: String, rid: String, lids: String, n: Int, v: Int, tag: String?) {
            self.k = k; self.rid = rid; self.lids = lids; self.n = n; self.v = v; self.tag = tag
        }
        init(_ o: [String: Any]) {
            k = o["k"] as? String ?? "?"; rid = o["rid"] as? String ?? "?"; lids = o["lids"] as? String ?? "?"
            n = o["n"] as? Int ?? -1; v = o["v"] as? Int ?? -1; tag = o["tag"] as? String
        }
        var description: String { "\(k)/\(rid)[\(lids)] n=\(n) v=\(v)\(tag.map { " " + $0 } ?? "")" }
    }

    /// The join's answer: each right with the lefts of its key in [R.ts - 1h, R.ts] (time order), its
    /// ordinal among the key's merges (rights fire in time order), and the version it was merged by.
    static func reference(lefts: [Ev], rights: [(Ev, version: Int)]) -> [Joined] {
        var n: [String: Int] = [:]
        var out: [Joined] = []
        for (r, version) in rights.sorted(by: { $0.0.ts < $1.0.ts }) {
            let matches = lefts.filter { $0.k == r.k && r.ts - 3_600_000 <= $0.ts && $0.ts <= r.ts }.sorted { $0.ts < $1.ts }
            guard !matches.isEmpty else { continue }
            n[r.k, default: 0] += 1
            out.append(Joined(k: r.k, rid: r.id, lids: matches.map(\.id).joined(separator: ","), n: n[r.k]!,
                              v: version, tag: version == 2 ? "B" : nil))
        }
        return out
    }

    @Test func keyedStateAndCtxStateSurviveAReloadAndSIGTERMFlushesWhatIsHeld() async throws {
        let t0 = Self.t0
        let dir = try SluiceBinary.scratch()
        try dir.write(Self.spec, to: "pipelines/p.yaml")
        try dir.write(Self.udf(tag: nil), to: "udfs/m.lua")
        let leftPath = dir.appendingPathComponent("data/left.jsonl").path
        let rightPath = dir.appendingPathComponent("data/right.jsonl").path

        // Phase 1 (version 1): keys k0..k4 get two lefts and one right each; m0..m2 only a left (held
        // across the reload). Flush events (keys of their own, never matched) move both watermarks past
        // every right of the phase, so those rights are merged now.
        var lefts1: [Ev] = []
        for i in 0..<5 {
            let base = t0 + Int64(i) * 1000
            lefts1.append(Ev(k: "k\(i)", id: "L\(i)a", ts: base))
            lefts1.append(Ev(k: "k\(i)", id: "L\(i)b", ts: base + 500))
        }
        for i in 0..<3 { lefts1.append(Ev(k: "m\(i)", id: "M\(i)", ts: t0 + 5000 + Int64(i))) }
        lefts1.append(Ev(k: "flushL", id: "F1", ts: t0 + 60_000))
        let rights1 = (0..<5).map { Ev(k: "k\($0)", id: "R\($0)a", ts: t0 + 10_000 + Int64($0)) }
            + [Ev(k: "flushR", id: "G1", ts: t0 + 60_000)]
        try dir.write(lefts1.map { $0.line + "\n" }.joined(), to: "data/left.jsonl")
        try dir.write(rights1.map { $0.line + "\n" }.joined(), to: "data/right.jsonl")

        let run = try ReloadingRun(dir: dir)
        var port: Int?
        let started = await eventually(timeout: .seconds(20)) { port = StatefulRun.adminPort(run.stderrLines); return port != nil }
        try #require(started, "no admin port logged: \(run.stderrLines)")
        let admin = try #require(port)
        func sample(_ family: String, _ label: String = #"operator="j""#) -> Double? {
            StatefulRun.sample(port: admin, family, label: label)
        }

        let phase1 = await eventually(timeout: .seconds(20)) { dir.lines("out/o.jsonl").count >= 5 }
        #expect(phase1, "phase 1 outputs: \(dir.lines("out/o.jsonl")) \(run.stderrLines)")
        // Held now: 10 k lefts, 3 m lefts, both flush events.
        let held1 = await eventually(timeout: .seconds(10)) { sample("sluice_operator_held_results") == 15 }
        #expect(held1, "held results \(String(describing: sample("sluice_operator_held_results")))")

        // Reload: a new version of the merge UDF (adds `tag`), rewritten in place.
        try UDFFile.writeInPlace(Self.udf(tag: "B"), to: dir.appendingPathComponent("udfs/m.lua").path)
        let live = await eventually(timeout: .seconds(20)) {
            run.stderrLines.contains { $0.contains("UDF version 2 is live") }
                && sample("sluice_udf_version", #"pipeline="stateful-reload""#) == 2
        }
        try #require(live, "version 2 never went live: \(run.stderrLines)")

        // Phase 2 (version 2): new rights for k0..k4 join the lefts held since phase 1 (their ctx.state
        // count goes on at 2); m0..m2 get their first right; flush events on both sides again.
        let rights2 = (0..<5).map { Ev(k: "k\($0)", id: "R\($0)b", ts: t0 + 120_000 + Int64($0)) }
            + (0..<3).map { Ev(k: "m\($0)", id: "N\($0)", ts: t0 + 120_010 + Int64($0)) }
            + [Ev(k: "flushR", id: "G2", ts: t0 + 200_000)]
        let lefts2 = [Ev(k: "flushL", id: "F2", ts: t0 + 200_000)]
        try StatefulRun.append(rights2.map(\.line), to: rightPath)
        try StatefulRun.append(lefts2.map(\.line), to: leftPath)
        let phase2 = await eventually(timeout: .seconds(20)) { dir.lines("out/o.jsonl").count >= 13 }
        #expect(phase2, "phase 2 outputs: \(dir.lines("out/o.jsonl"))")

        // Phase 3: rights (and a new key z) behind no flush: held until SIGTERM ends the sources.
        let lefts3 = [Ev(k: "z", id: "Z1", ts: t0 + 240_000)]
        let rights3 = (0..<5).map { Ev(k: "k\($0)", id: "R\($0)c", ts: t0 + 250_000 + Int64($0)) }
            + [Ev(k: "z", id: "Y1", ts: t0 + 250_100)]
        try StatefulRun.append(lefts3.map(\.line), to: leftPath)
        try StatefulRun.append(rights3.map(\.line), to: rightPath)
        let leftCount: Int = lefts1.count + lefts2.count + lefts3.count
        let total: Int = leftCount + rights1.count + rights2.count + rights3.count
        let absorbed = await eventually(timeout: .seconds(20)) {
            sample("sluice_events_received_total", #"component="j""#) == Double(total)
        }
        #expect(absorbed, "the join received \(String(describing: sample("sluice_events_received_total", #"component="j""#))) of \(total)")
        #expect(dir.lines("out/o.jsonl").count == 13, "phase 3 must stay held until the end: \(dir.lines("out/o.jsonl"))")

        run.send(SIGTERM)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(stderr.contains("udf version 2, 0 reload(s) rejected"), "\(stderr)")

        let expected = Self.reference(lefts: lefts1 + lefts2 + lefts3,
                                      rights: rights1.map { ($0, 1) } + (rights2 + rights3).map { ($0, 2) })
        #expect(expected.count == 19)
        let got = StatefulRun.objects(dir, "out/o.jsonl").map(Joined.init)
        #expect(got.count == dir.lines("out/o.jsonl").count)
        #expect(Kafka.multiset(got) == Kafka.multiset(expected), "got \(got)\nexpected \(expected)")
        // Before the reload only version 1 merged; every later result carries version 2.
        #expect(got.prefix(5).allSatisfy { $0.v == 1 && $0.tag == nil && $0.n == 1 }, "\(got.prefix(5))")
        #expect(got.dropFirst(5).allSatisfy { $0.v == 2 && $0.tag == "B" }, "\(got)")
        // ctx.state went on counting across the reload (k keys: 1, 2, 3).
        #expect(got.filter { $0.k == "k0" }.map(\.n) == [1, 2, 3])
        #expect(dir.lines("out/dead.jsonl").isEmpty, "\(dir.lines("out/dead.jsonl"))")
        try? FileManager.default.removeItem(at: dir)
    }
}
