import Testing
@testable import SluiceCore

@Suite("JSONValue.parse")
struct JSONParserTests {
    @Test("parses scalars, keeping integers and doubles apart")
    func scalars() throws {
        #expect(try JSONValue.parse("null") == .null)
        #expect(try JSONValue.parse("true") == .bool(true))
        #expect(try JSONValue.parse("false") == .bool(false))
        if case .int(let i) = try JSONValue.parse("42") { #expect(i == 42) } else { Issue.record("not int") }
        if case .int(let i) = try JSONValue.parse("-9223372036854775808") { #expect(i == .min) } else { Issue.record("not int") }
        if case .int(let i) = try JSONValue.parse("9223372036854775807") { #expect(i == .max) } else { Issue.record("not int") }
        if case .double(let d) = try JSONValue.parse("9223372036854775808") { #expect(d == 9223372036854775808.0) } else { Issue.record("not double") }
        if case .double(let d) = try JSONValue.parse("1.0") { #expect(d == 1.0) } else { Issue.record("not double") }
        if case .double(let d) = try JSONValue.parse("1e2") { #expect(d == 100) } else { Issue.record("not double") }
        if case .double(let d) = try JSONValue.parse("-2.5E-3") { #expect(d == -0.0025) } else { Issue.record("not double") }
        if case .double(let d) = try JSONValue.parse("0.1") { #expect(d == 0.1) } else { Issue.record("not double") }
        if case .double(let d) = try JSONValue.parse("1.7976931348623157e308") { #expect(d == .greatestFiniteMagnitude) } else { Issue.record("not double") }
        if case .double(let d) = try JSONValue.parse("2.2250738585072014e-308") { #expect(d == 2.2250738585072014e-308) } else { Issue.record("not double") }
        if case .double(let d) = try JSONValue.parse("123456789012345678901234567890") { #expect(d == 1.2345678901234568e29) } else { Issue.record("not double") }
        if case .double(let d) = try JSONValue.parse("0.30000000000000004") { #expect(d == 0.30000000000000004) } else { Issue.record("not double") }
        if case .double(let d) = try JSONValue.parse("1e400") { #expect(d == .infinity) } else { Issue.record("not double") }
        #expect(try JSONValue.parse("\"a\\nb\\u00e9\\ud83d\\ude00\"") == .string("a\nbé😀"))
    }

    @Test("parses nested structures and keeps key order")
    func nested() throws {
        let v = try JSONValue.parse(#" {"z":1,"a":[true,{"k":null}],"m":{"x":"y"}} "#)
        guard case .object(let members) = v else { Issue.record("not object"); return }
        #expect(members.map(\.0) == ["z", "a", "m"])
        #expect(v["a"] == .array([.bool(true), .object([("k", .null)])]))
        #expect(v["m"]?["x"] == .string("y"))
    }

    @Test("duplicate keys: last value wins at the first position")
    func duplicateKeys() throws {
        let v = try JSONValue.parse(#"{"a":1,"b":2,"a":3}"#)
        guard case .object(let members) = v else { Issue.record("not object"); return }
        #expect(members.map(\.0) == ["a", "b"])
        #expect(v["a"] == .int(3))
    }

    @Test("escaped keys are decoded")
    func escapedKeys() throws {
        let v = try JSONValue.parse(#"{"a\"b":1,"\u0063":2}"#)
        #expect(v["a\"b"] == .int(1))
        #expect(v["c"] == .int(2))
    }

    @Test("syntax errors carry message and offset")
    func errors() {
        #expect(throws: JSONSyntaxError(message: "unexpected character ']'", offset: 3)) { try JSONValue.parse("[1,]") }
        #expect(throws: JSONSyntaxError(message: "trailing characters", offset: 3)) { try JSONValue.parse("{} x") }
        do {
            _ = try JSONValue.parse(Array(repeating: UInt8(ascii: "["), count: 100_000))
            Issue.record("expected an error")
        } catch {
            #expect(error.message == "nesting deeper than 128")
        }
    }

    static let roundTrips: [String] = [
        #"{"a":1,"b":-2.5,"c":"x\"y\\z\n\u0001","d":[true,false,null],"e":{},"f":[]}"#,
        #"[9223372036854775807,-9223372036854775808,0,1.5,1e+100]"#,
        #""é€😀""#,
        #"{"nested":{"deeper":{"deepest":[[[1]]]}}}"#,
    ]

    @Test("encode then parse gives back the same value", arguments: roundTrips)
    func roundTrip(_ text: String) throws {
        let v = try JSONValue.parse(text)
        let again = try JSONValue.parse(v.encoded())
        #expect(again == v)
        #expect(again.encoded() == v.encoded())
    }

    @Test("compact documents round-trip byte for byte")
    func byteExactRoundTrip() throws {
        let text = #"{"a":1,"b":"x\"y","c":[true,false,null],"d":{"e":-7}}"#
        #expect(try JSONValue.parse(text).jsonText == text)
    }

    @Test("parses from any collection of bytes")
    func anyCollection() throws {
        let bytes = Array(#"xx{"a":1}yy"#.utf8)
        #expect(try JSONValue.parse(bytes[2..<9]) == .object([("a", .int(1))]))
        #expect(try JSONValue.parse(AnySequenceCollection(Array("[1]".utf8))) == .array([.int(1)]))
    }
}

/// A collection without contiguous storage, to exercise the copying path.
private struct AnySequenceCollection: Collection {
    let base: [UInt8]
    init(_ base: [UInt8]) { self.base = base }
    var startIndex: Int { 0 }
    var endIndex: Int { base.count }
    func index(after i: Int) -> Int { i + 1 }
    subscript(i: Int) -> UInt8 { base[i] }
}
