import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore

/// Filters and `when` conditions see a read-only view of the event: they can read everything
/// (fields, nested tables, `#`, `pairs`, `ipairs`) but a change is an error (dead-lettered), so a
/// sibling stage never sees what a test did while sinks write the original bytes.
@Suite struct ReadOnlyTestViewTests {
    static let udfs = ["t.lua": """
    local M = {}
    function M.sneaky(e) e.seen = true return true end
    function M.nested_sneaky(e) e.client.os = "hacked" return true end
    function M.reads(e)
      local n = 0
      for k, v in pairs(e) do n = n + 1 end
      local tags = 0
      for i, t in ipairs(e.tags) do tags = tags + 1 end
      return n == 3 and #e.tags == 2 and tags == 2 and e.client.os == "ios" and e.tags[2] == "b"
    end
    function M.echo(e) return e end
    return M
    """]

    @Test func aFilterThatChangesItsEventIsDeadLetteredAndSiblingsSeeTheOriginal() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {} } }
        transforms:
          sneaky: { from: s, filter: { udf: t.sneaky } }
          nested: { from: s, filter: { udf: t.nested_sneaky } }
          sibling: { from: s, map: { udf: t.echo } }
        sinks:
          a: { from: sneaky, stdout: {} }
          b: { from: nested, stdout: {} }
          c: { from: sibling, when: 'event.seen == nil and event.client.os == "ios"', stdout: {} }
        """, udfs: Self.udfs)
        let line = #"{"client":{"os":"ios"},"n":1,"tags":["a","b"]}"#
        let r = try Stateful.run(s, ["s": [line]])
        #expect((r.captured["a"] ?? []).isEmpty)
        #expect((r.captured["b"] ?? []).isEmpty)
        #expect((r.captured["c"] ?? []).map { String(decoding: $0, as: UTF8.self) } == [line], "the sibling saw the original")
        let dead = (r.captured["dead_letter"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(dead.count == 2)
        #expect(dead.allSatisfy { $0.contains("the event is read-only in a filter") }, "\(dead)")
    }

    @Test func aFilterReadsEverythingThroughTheView() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {} } }
        transforms: { r: { from: s, filter: { udf: t.reads } } }
        sinks: { o: { from: r, when: 'event.tags[1] == "a"', stdout: {} } }
        """, udfs: Self.udfs)
        let line = #"{"client":{"os":"ios"},"n":1,"tags":["a","b"]}"#
        let r = try Stateful.run(s, ["s": [line]])
        #expect((r.captured["o"] ?? []).map { String(decoding: $0, as: UTF8.self) } == [line])
        #expect((r.captured["dead_letter"] ?? []).isEmpty)
    }
}
