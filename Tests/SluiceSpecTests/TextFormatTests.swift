import Testing
@testable import SluiceSpec

/// A `format: text` event is a line, not a JSON object: declarative `project` and `match` (filters
/// and sink `when`) cannot read it and are rejected where they read a text source directly.
@Suite struct TextFormatTests {
    @Test func projectAndMatchReadingATextSourceAreRejectedAtTheirOwnLine() {
        #expect(errors("""
        sources: { s: { stdin: {}, format: text } }
        transforms:
          p: { from: s, project: [a] }
          f: { from: s, filter: { match: { a: 1 } } }
        sinks:
          o: { from: [p, f], stdout: {} }
          w: { from: s, when: { match: { a: 1 } }, stdout: {}, format: text }
        """) == [
            "p.yaml:3:3: transform 'p' uses 'project' on source 's', which is 'format: text' (its events are lines, not JSON objects); use a Lua map, or make the source 'format: json'",
            "p.yaml:4:3: transform 'f' uses 'match' on source 's', which is 'format: text' (its events are lines, not JSON objects); use a Lua filter, or make the source 'format: json'",
            "p.yaml:7:3: sink 'w' uses 'match' in 'when' on source 's', which is 'format: text' (its events are lines, not JSON objects); use a Lua 'when', or make the source 'format: json'",
        ])
    }

    @Test func luaOnATextSourceIsFine() {
        #expect(errors("""
        sources: { s: { stdin: {}, format: text } }
        transforms: { f: { from: s, filter: 'event ~= ""' } }
        sinks: { o: { from: f, when: 'true', stdout: {}, format: text } }
        """) == [])
    }
}
