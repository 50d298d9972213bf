import Testing
@testable import SluiceSpec

/// `${VAR}` unquoted inside a flow mapping is a YAML syntax error (`{` and `}` are flow syntax):
/// the message says so, at the variable's own line and column, and suggests the quotes.
@Suite struct UnquotedVariableTests {
    @Test func anUnquotedVariableInAFlowMappingSuggestsQuotes() throws {
        let text = "sources: { s: { stdin: {} } }\nsinks: { o: { from: s, file: { path: ${OUT} } } }\n"
        let (_, diags) = YAMLReader.read(Array(text.utf8), file: "p.yaml")
        let d = try #require(diags.first)
        #expect(diags.count == 1)
        #expect(d.location.description == "p.yaml:2:38", "\(d)")
        #expect(d.message.contains(#"quote it: "${OUT}""#), "\(d)")
    }

    @Test func aQuotedVariableOrABlockMappingIsNotFlagged() {
        let ok = "sinks:\n  o: { from: s, file: { path: \"${OUT}\" } }\n  p:\n    path: ${OUT}\n"
        #expect(YAMLReader.read(Array(ok.utf8), file: "p.yaml").diagnostics.isEmpty)
    }
}
