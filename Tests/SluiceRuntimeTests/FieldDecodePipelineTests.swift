import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore

/// An event is decoded into Lua once and the table serves every Lua function after it until a
/// map makes a new one, so it must hold what all of them read: when one of them may read
/// anything, the whole event is decoded. Outputs here are the ones a whole decode gives.
@Suite struct FieldDecodePipelineTests {
    static let udfs = ["t.lua": """
        local M = {}
        function M.has_a(event) return event.a ~= nil end
        function M.echo(event) return event end
        function M.echo2(event) local t = event return { b = t.b, d = t.c.d } end
        function M.pick(event) return { b = event.b, d = event.c.d } end
        function M.alias(event) local c = event.c c.e = 99 return true end
        function M.insert(event) table.insert(event.c.d, 7) return true end
        function M.scalars(event) return event.a == 1 and event.c.e == 4 end
        function M.count(event)
          local n = 0
          for _ in pairs(event) do n = n + 1 end
          return { fields = n }
        end
        return M
        """]
    static let line = #"{"a":1,"b":"two","c":{"d":[3],"e":4},"z":null}"#

    private func lines(_ r: RunReport, _ sink: String) -> [String] {
        (r.captured[sink] ?? []).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A closure made during one call keeps that call's event: the next event must not be
    /// decoded into the table it captured.
    @Test func aClosureThatCapturedAnEarlierEventStillSeesThatEvent() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {} } }
        transforms:
          m: { from: s, map: { udf: c.f } }
        sinks:
          o: { from: m, stdout: {} }
        """, udfs: ["c.lua": """
            local M = {}
            local previous
            function M.f(event)
              local out = previous and previous() or "none"
              previous = function() return event.x end
              return { x = event.x, prev = out }
            end
            return M
            """])
        let r = try Stateful.run(s, ["s": [#"{"x":1}"#, #"{"x":2}"#, #"{"x":3,"y":0}"#]])
        #expect(lines(r, "o") == [#"{"prev":"none","x":1}"#, #"{"prev":1,"x":2}"#, #"{"prev":2,"x":3}"#])
    }

    @Test func aFilterBeforeAMapThatReturnsItsEventGetsTheWholeEvent() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {} } }
        transforms:
          f: { from: s, filter: { udf: t.has_a } }
          m: { from: f, map: { udf: t.echo } }
          n: { from: f, map: { udf: t.count } }
        sinks:
          whole: { from: m, stdout: {} }
          counted: { from: n, stdout: {} }
        """, udfs: Self.udfs)
        let r = try Stateful.run(s, ["s": [Self.line]])
        #expect(lines(r, "whole") == [#"{"a":1,"b":"two","c":{"d":[3],"e":4},"z":null}"#])
        #expect(lines(r, "counted") == [#"{"fields":3}"#])
    }

    @Test func aFilterAndAMapThatReadFieldsSeeThemAndTheSinkWritesTheOriginal() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {} } }
        transforms:
          f: { from: s, filter: { udf: t.has_a } }
          m: { from: f, map: { udf: t.pick } }
        sinks:
          picked: { from: m, stdout: {} }
          passed: { from: f, when: 'event.c.e == 4', stdout: {} }
          direct: { from: s, when: 'event.b == "two" and event.z == nil', stdout: {} }
        """, udfs: Self.udfs)
        let other = #"{"b":"no a","c":{"d":1}}"#
        let r = try Stateful.run(s, ["s": [Self.line, other]])
        #expect(lines(r, "picked") == [#"{"b":"two","d":[3]}"#])
        #expect(lines(r, "passed") == [Self.line])
        #expect(lines(r, "direct") == [Self.line])
        #expect((r.captured["dead_letter"] ?? []).isEmpty)
    }

    @Test func readingThroughAFieldThatIsNoObjectFailsAsWithAWholeDecode() throws {
        let spec = { (map: String) in try Stateful.spec("""
            sources: { s: { stdin: {} } }
            transforms: { m: { from: s, map: { udf: \(map) } } }
            sinks: { o: { from: m, stdout: {} } }
            """, udfs: Self.udfs) }
        let bad = [#"{"b":1,"c":5}"#, #"{"b":1,"c":}"#]
        let fields = try Stateful.run(try spec("t.pick"), ["s": bad])
        let reasons = (fields.captured["dead_letter"] ?? []).compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])?["reason"] as? String
        }
        #expect(reasons.count == 2)
        #expect(reasons.first?.contains("attempt to index a number value") == true, "\(reasons)")
        // The same events through a map that decodes everything give the same reasons.
        let whole = try Stateful.run(try spec("t.echo2"), ["s": bad])
        let wholeReason = (whole.captured["dead_letter"] ?? []).compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])?["reason"] as? String
        }
        // (the two functions sit on different lines of t.lua)
        let unplaced = { (r: [String]) in r.map { $0.replacingOccurrences(of: #"^udfs/t\.lua:\d+: "#, with: "", options: .regularExpression) } }
        #expect(unplaced(wholeReason) == unplaced(reasons), "\(reasons) \(wholeReason)")
    }

    /// A filter reading only scalars gets its table without the read-only view (nothing it can
    /// reach can be changed); one that holds a nested table still runs on the view, so changing
    /// it is the usual dead letter and siblings see the original.
    @Test func aFilterThatHoldsANestedTableStillCannotChangeIt() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {} } }
        transforms:
          alias: { from: s, filter: { udf: t.alias } }
          insert: { from: s, filter: { udf: t.insert } }
          scalars: { from: s, filter: { udf: t.scalars } }
          after: { from: scalars, map: { udf: t.pick } }
        sinks:
          a: { from: alias, stdout: {} }
          i: { from: insert, stdout: {} }
          picked: { from: after, stdout: {} }
          passed: { from: scalars, stdout: {} }
        """, udfs: Self.udfs)
        let r = try Stateful.run(s, ["s": [Self.line]])
        #expect(lines(r, "a").isEmpty && lines(r, "i").isEmpty)
        #expect(lines(r, "passed") == [Self.line])
        #expect(lines(r, "picked") == [#"{"b":"two","d":[3]}"#], "the map after it saw the original nested table")
        let dead = (r.captured["dead_letter"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(dead.count == 2 && dead.allSatisfy { $0.contains("the event is read-only") }, "\(dead)")
    }
}
