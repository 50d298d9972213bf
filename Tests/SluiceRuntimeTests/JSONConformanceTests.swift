import Testing
import SluiceCore
import SluiceLua
@testable import SluiceRuntime

/// One conformance corpus (modelled on JSONTestSuite's y_/n_/i_ cases, plus numbers at the edges)
/// run through both JSON readers: the declarative path's validator and the Lua decoder. They must
/// agree on every case: y_ accepted, n_ rejected, i_ (implementation-defined) the same either way.
@Suite struct JSONConformanceTests {
    enum Expect { case accept, reject, agree }

    /// (name, event text, expectation). Events are objects: value cases sit under "v".
    static let corpus: [(String, String, Expect)] = [
        ("y_empty_object", "{}", .accept),
        ("y_nested", #"{"a":{"b":[1,2,{"c":null}]}}"#, .accept),
        ("y_strings_escapes", #"{"v":"\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00"}"#, .accept),
        ("y_utf8_raw", "{\"v\":\"h\u{e9}llo \u{1F600}\"}", .accept),
        ("y_whitespace", " {\t\"a\" :\r\n 1 } ", .accept),
        ("y_true_false_null", #"{"a":true,"b":false,"c":null}"#, .accept),
        ("y_empty_key", #"{"":1}"#, .accept),
        ("y_duplicate_keys", #"{"a":1,"a":2}"#, .accept),
        ("y_number_zero", #"{"v":0}"#, .accept),
        ("y_number_negative_zero", #"{"v":-0}"#, .accept),
        ("y_number_fraction", #"{"v":0.5}"#, .accept),
        ("y_number_exponent", #"{"v":1E+2}"#, .accept),
        ("y_number_exponent_minus", #"{"v":1e-2}"#, .accept),
        ("y_int64_max", #"{"v":9223372036854775807}"#, .accept),
        ("y_int64_min", #"{"v":-9223372036854775808}"#, .accept),
        ("y_beyond_int64", #"{"v":9223372036854775808}"#, .accept),
        ("y_beyond_int64_negative", #"{"v":-9223372036854775809}"#, .accept),
        ("y_2_pow_53_plus_1", #"{"v":9007199254740993}"#, .accept),
        ("y_double_max", #"{"v":1.7976931348623157e308}"#, .accept),
        ("y_double_min_subnormal", #"{"v":5e-324}"#, .accept),
        ("y_huge_exponent", #"{"v":1e400}"#, .accept),
        ("y_huge_negative_exponent", #"{"v":-1e400}"#, .accept),
        ("y_tiny_underflow", #"{"v":1e-400}"#, .accept),
        ("y_many_digits", "{\"v\":" + String(repeating: "1", count: 400) + "}", .accept),
        ("y_array_empty", #"{"v":[]}"#, .accept),
        ("y_deep_100", String(repeating: #"{"a":"#, count: 100) + "1" + String(repeating: "}", count: 100), .accept),
        ("n_not_object_array", "[1]", .reject),
        ("n_not_object_string", #""a""#, .reject),
        ("n_not_object_number", "1", .reject),
        ("n_empty", "", .reject),
        ("n_trailing_comma_object", #"{"a":1,}"#, .reject),
        ("n_trailing_comma_array", #"{"v":[1,]}"#, .reject),
        ("n_single_quotes", "{'a':1}", .reject),
        ("n_unquoted_key", "{a:1}", .reject),
        ("n_missing_colon", #"{"a" 1}"#, .reject),
        ("n_missing_value", #"{"a":}"#, .reject),
        ("n_unclosed_object", #"{"a":1"#, .reject),
        ("n_unclosed_string", #"{"a":"x}"#, .reject),
        ("n_leading_zero", #"{"v":01}"#, .reject),
        ("n_plus_sign", #"{"v":+1}"#, .reject),
        ("n_dot_no_digits", #"{"v":1.}"#, .reject),
        ("n_leading_dot", #"{"v":.5}"#, .reject),
        ("n_exponent_no_digits", #"{"v":1e}"#, .reject),
        ("n_hex", #"{"v":0x10}"#, .reject),
        ("n_nan", #"{"v":NaN}"#, .reject),
        ("n_infinity", #"{"v":Infinity}"#, .reject),
        ("n_true_capital", #"{"v":True}"#, .reject),
        ("n_control_char_in_string", "{\"v\":\"a\u{01}b\"}", .reject),
        ("n_bad_escape", #"{"v":"\x41"}"#, .reject),
        ("n_short_unicode_escape", #"{"v":"\u12"}"#, .reject),
        ("n_garbage_after", #"{"a":1} x"#, .reject),
        ("n_two_objects", #"{"a":1}{"b":2}"#, .reject),
        ("n_comment", #"{"a":1 /* c */}"#, .reject),
        ("i_lone_high_surrogate", #"{"v":"\ud800"}"#, .agree),
        ("i_lone_low_surrogate", #"{"v":"\udc00"}"#, .agree),
        ("i_reversed_surrogates", #"{"v":"\udc00\ud800"}"#, .agree),
        ("i_deep_200", String(repeating: #"{"a":"#, count: 200) + "1" + String(repeating: "}", count: 200), .agree),
        ("i_bom", "\u{FEFF}{}", .agree),
    ]

    static let rawCases: [(String, [UInt8], Expect)] = [
        ("n_invalid_utf8", Array(#"{"v":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8), .reject),
        ("n_overlong_utf8", Array(#"{"v":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8), .reject),
        ("n_truncated_utf8", Array(#"{"v":""#.utf8) + [0xE2, 0x82] + Array(#""}"#.utf8), .reject),
        ("n_utf16_surrogate_in_utf8", Array(#"{"v":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8), .reject),
    ]

    /// Runs every case through a pipeline whose first transform is declarative, and one whose
    /// first transform is Lua: the two ways an event is read. Accepted = reached the sink.
    func accepted(_ filter: String, _ cases: [(String, [UInt8], Expect)]) throws -> Set<String> {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {} } }
        transforms: { t: { from: s, filter: \(filter) } }
        sinks: { o: { from: t, stdout: {} } }
        """)
        let events = cases.enumerated().map { i, c in Event(bytes: c.1, position: Int64(i + 1)) }
        let r = try Pipeline(spec: s, options: RunOptions(sourceOverrides: ["s": events], captureSinks: true, log: { _, _ in })).run()
        let written = Set((r.captured["o"] ?? []).map { Array($0) })
        #expect((r.captured["o"] ?? []).count + (r.captured["dead_letter"] ?? []).count == cases.count, "nothing lost")
        return Set(cases.filter { written.contains($0.1) }.map(\.0))
    }

    @Test func bothReadersAgreeOnEveryCase() throws {
        let cases = Self.corpus.map { ($0.0, Array($0.1.utf8), $0.2) } + Self.rawCases
        let declarative = try accepted("{ match: { no_such_field: { exists: false } } }", cases)
        let lua = try accepted("'true'", cases)
        var disagreements: [String] = []
        for (name, _, expect) in cases {
            let d = declarative.contains(name), l = lua.contains(name)
            switch expect {
            case .accept where !(d && l), .reject where d || l:
                disagreements.append("\(name): declarative \(d), lua \(l), expected \(expect)")
            case .agree where d != l:
                disagreements.append("\(name): declarative \(d), lua \(l) disagree")
            default: break
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
    }

    /// Big numbers stay exact where no UDF changes the event; a changed event is re-encoded.
    @Test func numbersAtTheEdgesPassThroughExactly() throws {
        let s = try Stateful.spec("""
        sources: { s: { stdin: {} } }
        transforms:
          seen: { from: s, filter: 'event.v ~= nil' }
          changed: { from: s, map: { udf: m.touch } }
        sinks:
          same: { from: seen, stdout: {} }
          touched: { from: changed, stdout: {} }
        """, udfs: ["m.lua": "local M = {}\nfunction M.touch(e) e.t = 1 return e end\nreturn M\n"])
        let lines = [#"{"v":9223372036854775808}"#, #"{"v":1e400}"#, #"{"v":9007199254740993}"#, #"{"v":-9223372036854775808}"#]
        let r = try Stateful.run(s, ["s": lines])
        #expect((r.captured["same"] ?? []).map { String(decoding: $0, as: UTF8.self) } == lines, "byte for byte")
        let touched = (r.captured["touched"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(touched == [#"{"t":1,"v":9.223372036854776e+18}"#, #"{"t":1,"v":9007199254740993}"#, #"{"t":1,"v":-9223372036854775808}"#],
                "beyond 64 bits: the nearest double once changed; int64 exact")
        let dead = (r.captured["dead_letter"] ?? []).map { String(decoding: $0, as: UTF8.self) }
        #expect(dead.count == 1 && dead[0].contains("cannot encode infinity"), "\(dead)")
    }
}
