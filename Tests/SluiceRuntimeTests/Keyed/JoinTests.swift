import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore

/// `join` against a reference computed here from SPEC.md's rule (never by the engine).
@Suite struct JoinTests {
    static let merge = """
    local M = {}
    -- one output per right: its id and the ids of its lefts, in the order merge got them
    function M.all(lefts, right, ctx)
      local ids = {}
      for i, l in ipairs(lefts) do ids[#ids + 1] = l.id end
      if right == nil then return { l = lefts[1].id, unmatched = true } end
      return { r = right.id, ls = table.concat(ids, ","), key = right.key }
    end
    -- one output per pair
    function M.pairs(lefts, right, ctx)
      local out = {}
      for i, l in ipairs(lefts) do out[#out + 1] = { l = l.id, r = right.id } end
      return out
    end
    return M
    """

    static func yaml(emit: String = "complete", unmatched: String = "drop", udf: String = "j.all", workers: Int = 1,
                     parallelism: Int? = nil) -> String {
        """
        sources:
          imp: { stdin: {}, time: ts, lateness: 5s }
          plays: { file: { path: /dev/null }, time: ts, lateness: 5s }
        transforms:
          conv:
            join:
              left: { from: imp, key: '{key}' }
              right: { from: plays, key: '{key}' }
              within: 10s
              merge: { udf: \(udf) }
              emit: \(emit)
              unmatched: \(unmatched)
            \(parallelism.map { "parallelism: \($0)" } ?? "")
        sinks: { out: { from: conv, stdout: {} } }
        settings: { workers: \(workers), batch_size: 7 }
        """
    }

    /// Lefts and rights over the same keys; rights come a little after their lefts.
    static func data(seed: UInt64, late: Double = 0) -> (lefts: [TimedEvent], rights: [TimedEvent]) {
        var rnd = SeededRandom(seed: seed)
        let lefts = Streams.make(&rnd, count: 400, prefix: "L", keys: 30, step: 0...100, disorder: 3_000, late: late)
        let rights = Streams.make(&rnd, count: 300, prefix: "R", keys: 30, start: 1_700_000_002_000, step: 0...130, disorder: 3_000, late: late)
        return (lefts, rights)
    }

    /// For each on-time right, its on-time lefts within 10 s before it, sorted by time then arrival.
    static func reference(_ lefts: [TimedEvent], _ rights: [TimedEvent], within: Int64 = 10_000) -> [(r: String, ls: [String])] {
        let l = Streams.onTime(lefts, lateness: 5_000).onTime
        let r = Streams.onTime(rights, lateness: 5_000).onTime
        return r.map { right in
            let ls = l.enumerated().filter { $0.element.key == right.key && right.time - within <= $0.element.time && $0.element.time <= right.time }
                .sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element.id)
            return (right.id, ls)
        }
    }

    func run(_ yaml: String, _ d: (lefts: [TimedEvent], rights: [TimedEvent])) throws -> RunReport {
        let s = try Stateful.spec(yaml, udfs: ["j.lua": Self.merge])
        return try Stateful.run(s, ["imp": d.lefts.map(\.json), "plays": d.rights.map(\.json)])
    }

    @Test(arguments: [(UInt64(11), 0.0), (UInt64(12), 0.0), (UInt64(13), 0.08)])
    func completeMergesEachRightOnceWithAllItsLeftsInTimeOrder(seed: UInt64, late: Double) throws {
        let d = Self.data(seed: seed, late: late)
        let r = try run(Self.yaml(), d)
        let expected = Self.reference(d.lefts, d.rights).filter { !$0.ls.isEmpty }
        let got = Stateful.objects(r, "out").map { ($0["r"] as? String ?? "", ($0["ls"] as? String ?? "").split(separator: ",").map(String.init)) }
        #expect(Dictionary(uniqueKeysWithValues: got.map { ($0.0, $0.1) }) == Dictionary(uniqueKeysWithValues: expected.map { ($0.r, $0.ls) }),
                "seed \(seed)")
        #expect(got.count == expected.count, "seed \(seed): each right merged once")
        let lateCount = Streams.onTime(d.lefts, lateness: 5_000).late.count + Streams.onTime(d.rights, lateness: 5_000).late.count
        let dead = (r.captured["dead_letter"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(dead.count == lateCount, "seed \(seed)")
        #expect(dead.allSatisfy { $0.contains(#""reason":"late""#) })
        if late > 0 { #expect(lateCount > 0) }
    }

    @Test func eagerMergesEveryPairExactlyOnce() throws {
        let d = Self.data(seed: 21, late: 0.05)
        let r = try run(Self.yaml(emit: "eager", udf: "j.pairs"), d)
        let expected = Self.reference(d.lefts, d.rights).flatMap { e in e.ls.map { "\($0)-\(e.r)" } }
        let got = Stateful.objects(r, "out").map { "\($0["l"] as? String ?? "")-\($0["r"] as? String ?? "")" }
        #expect(got.sorted() == expected.sorted())
        #expect(Set(got).count == got.count)
    }

    @Test func unmatchedEmitCallsMergeForLonelyRightsAndLefts() throws {
        let d = Self.data(seed: 31)
        let r = try run(Self.yaml(unmatched: "emit"), d)
        let ref = Self.reference(d.lefts, d.rights)
        let matchedLefts = Set(ref.flatMap(\.ls))
        let lonelyLefts = Streams.onTime(d.lefts, lateness: 5_000).onTime.map(\.id).filter { !matchedLefts.contains($0) }
        let out = Stateful.objects(r, "out")
        let rights = out.filter { $0["r"] != nil }
        #expect(rights.count == ref.count, "every right once, matched or not")
        #expect(rights.filter { ($0["ls"] as? String ?? "").isEmpty }.count == ref.filter(\.ls.isEmpty).count)
        #expect(out.filter { $0["unmatched"] as? Bool == true }.compactMap { $0["l"] as? String }.sorted() == lonelyLefts.sorted())
    }

    @Test func severalWorkersAndStageParallelismGiveTheSameAnswer() throws {
        let d = Self.data(seed: 41, late: 0.03)
        let one = try run(Self.yaml(), d)
        let many = try run(Self.yaml(workers: 2, parallelism: 3), d)
        let a = Stateful.objects(one, "out").map(Stateful.json).sorted()
        let b = Stateful.objects(many, "out").map(Stateful.json).sorted()
        #expect(a == b)
        #expect(a.count == Self.reference(d.lefts, d.rights).filter { !$0.ls.isEmpty }.count)
    }

    @Test func withoutMergeTheOutputHoldsTheLeftsAndTheRight() throws {
        let s = try Stateful.spec("""
        sources:
          a: { stdin: {}, time: ts }
          b: { file: { path: /dev/null }, time: ts }
        transforms:
          j: { join: { left: { from: a, key: '{k}' }, right: { from: b, key: '{k}' }, within: 1s } }
        sinks: { out: { from: j, stdout: {} } }
        """)
        let r = try Stateful.run(s, ["a": [#"{"k":1,"ts":1000,"n":"x"}"#, #"{"k":1,"ts":1500,"n":"y"}"#, #"{"k":2,"ts":1500}"#],
                                     "b": [#"{"k":1,"ts":2000}"#, #"{"k":2,"ts":900}"#]])
        #expect((r.captured["out"] ?? []).map { String(decoding: $0, as: UTF8.self) } ==
                [#"{"left":[{"k":1,"ts":1000,"n":"x"},{"k":1,"ts":1500,"n":"y"}],"right":{"k":1,"ts":2000}}"#])
    }

    @Test func eventsWithoutTimeOrKeyAreDeadLettered() throws {
        let s = try Stateful.spec("""
        sources:
          a: { stdin: {}, time: ts }
          b: { file: { path: /dev/null }, time: ts }
        transforms:
          j: { join: { left: { from: a, key: '{k}' }, right: { from: b, key: '{k}' }, within: 1s } }
        sinks: { out: { from: j, stdout: {} } }
        """)
        let r = try Stateful.run(s, ["a": [#"{"k":1}"#, #"{"ts":5}"#, #"{"k":1,"ts":"2026-11-30T12:00:00Z"}"#],
                                     "b": [#"{"k":1,"ts":"2026-11-30T12:00:00.500Z"}"#]])
        let dead = (r.captured["dead_letter"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(dead.count == 2)
        #expect(dead.contains { $0.contains(#""reason":"no_time""#) })
        #expect(dead.contains { $0.contains(#""reason":"no_key""#) })
        #expect(Stateful.objects(r, "out").count == 1, "RFC 3339 times join")
    }
}
