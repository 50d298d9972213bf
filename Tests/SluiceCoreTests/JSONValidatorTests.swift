import Foundation
import Testing
@testable import SluiceCore

private func check(_ text: String) -> JSONSyntaxError? {
    JSONValidator.validate(Array(text.utf8))
}

private func checkBytes(_ bytes: [UInt8]) -> JSONSyntaxError? {
    JSONValidator.validate(bytes)
}

@Suite("JSON validation (JSONTestSuite-style)")
struct JSONValidatorTests {
    static let valid: [String] = [
        "{}", "[]", "{\"a\":1}", " \t\r\n{ \"a\" : [ 1 , 2 ] } \n",
        "0", "-0", "1", "-1", "1.5", "-0.0e-0", "1E10", "1e+10", "1e-10", "123456789012345678901234567890",
        "\"\"", "\"abc\"", "true", "false", "null",
        "[[[]]]", "{\"a\":{\"b\":{\"c\":null}}}",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0041\\u00e9\\u20AC\"", "\"\\ud83d\\ude00\"",
        "\"\\u0000\"", "\"é€😀\"", "\"\u{7f}\"",
        "[1,\"a\",true,false,null,{},[]]",
        "{\"a\":1,\"a\":2}",   // duplicate keys are syntactically valid
        "{\"\":\"\"}",
    ]

    @Test("accepts valid JSON texts", arguments: valid)
    func acceptsValid(_ text: String) {
        #expect(check(text) == nil, "\(text)")
    }

    static let invalid: [(String, String)] = [
        ("", "unexpected end of input"),
        ("   ", "unexpected end of input"),
        ("[1,]", "unexpected character ']'"),
        ("{\"a\":1,}", "unexpected character '}'"),
        ("[1 2]", "unexpected character '2'"),
        ("{\"a\" 1}", "unexpected character '1'"),
        ("{a:1}", "unexpected character 'a'"),
        ("{'a':1}", "unexpected character '''"),
        ("{\"a\":1", "unexpected end of input"),
        ("[1", "unexpected end of input"),
        ("01", "leading zero in number"),
        ("-01", "leading zero in number"),
        ("[01]", "leading zero in number"),
        ("1.", "unexpected end of input"),
        ("1.e5", "expected a digit after '.' in number"),
        (".5", "unexpected character '.'"),
        ("+1", "unexpected character '+'"),
        ("1e", "unexpected end of input"),
        ("1e+x", "expected a digit in number exponent"),
        ("-", "unexpected end of input"),
        ("-a", "unexpected character 'a'"),
        ("NaN", "unexpected character 'N'"),
        ("Infinity", "unexpected character 'I'"),
        ("tru", "unexpected end of input"),
        ("trux", "unexpected character 'x'"),
        ("nul", "unexpected end of input"),
        ("True", "unexpected character 'T'"),
        ("\"abc", "unterminated string"),
        ("\"abc\\", "unterminated string"),
        ("\"\\x\"", "invalid escape"),
        ("\"\\'\"", "invalid escape"),
        ("\"\\u12\"", "invalid \\u escape"),
        ("\"\\u12G4\"", "invalid \\u escape"),
        ("\"\\ud800\"", "lone surrogate in \\u escape"),
        ("\"\\udc00\"", "lone surrogate in \\u escape"),
        ("\"\\ud800\\u0041\"", "lone surrogate in \\u escape"),
        ("\"\\ud800x\"", "lone surrogate in \\u escape"),
        ("\"a\tb\"", "control character in string"),
        ("\"a\nb\"", "control character in string"),
        ("1 2", "trailing characters"),
        ("{} {}", "trailing characters"),
        ("{}x", "trailing characters"),
        ("[]]", "trailing characters"),
        ("[}", "unexpected character '}'"),
        ("{]", "unexpected character ']'"),
        ("[1,2}", "unexpected character '}'"),
        ("/* c */ {}", "unexpected character '/'"),
    ]

    @Test("rejects invalid JSON with a message", arguments: invalid)
    func rejectsInvalid(_ text: String, _ message: String) {
        let err = check(text)
        #expect(err != nil, "\(text)")
        #expect(err?.message == message, "\(text): \(String(describing: err))")
    }

    @Test("error offsets point at the problem")
    func offsets() {
        #expect(check("[1,]")?.offset == 3)
        #expect(check("{\"a\":1} x")?.offset == 8)
        #expect(check("  \"abc")?.offset == 2)             // unterminated: where the string opened
        #expect(check("[\"ok\", \"a\\qb\"]")?.offset == 9)  // at the backslash
        #expect(check("")?.offset == 0)
        #expect(check("[1,2")?.offset == 4)
    }

    @Test("description includes message and offset")
    func description() {
        #expect(check("[1,]")?.description == "unexpected character ']' at byte 3")
    }

    static let badUTF8: [[UInt8]] = [
        [0x22, 0x80, 0x22],                    // lone continuation byte
        [0x22, 0xC3, 0x22],                    // truncated 2-byte sequence
        [0x22, 0xC0, 0xAF, 0x22],              // overlong '/'
        [0x22, 0xC1, 0xBF, 0x22],              // overlong
        [0x22, 0xE0, 0x80, 0xAF, 0x22],        // overlong 3-byte
        [0x22, 0xED, 0xA0, 0x80, 0x22],        // UTF-8 encoded surrogate U+D800
        [0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22],  // overlong 4-byte
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],  // invalid lead
        [0x22, 0xFF, 0x22],
        [0x22, 0xE2, 0x82, 0x22],              // truncated euro sign
        [0x22, 0xE2, 0x82],                    // truncated at the end of input
    ]

    @Test("rejects invalid UTF-8 inside strings", arguments: badUTF8)
    func rejectsBadUTF8(_ bytes: [UInt8]) {
        let err = checkBytes(bytes)
        #expect(err?.message == "invalid UTF-8", "\(bytes)")
        #expect(err?.offset == 1)
    }

    @Test("invalid UTF-8 is found after a long ASCII run (fast path)")
    func badUTF8AfterLongASCII() {
        var bytes = Array("{\"k\":\"".utf8) + Array(repeating: UInt8(ascii: "a"), count: 100)
        bytes += [0xC3, 0x28] + Array("\"}".utf8)
        let err = checkBytes(bytes)
        #expect(err?.message == "invalid UTF-8")
        #expect(err?.offset == 106)
    }

    @Test("accepts valid multi-byte UTF-8 at every length")
    func acceptsMultibyte() {
        let s = "\"" + String(repeating: "aé€😀", count: 20) + "\""
        #expect(check(s) == nil)
        #expect(checkBytes([0x22, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]) == nil)  // U+10FFFF
        #expect(checkBytes([0x22, 0xEF, 0xBF, 0xBF, 0x22]) == nil)        // U+FFFF
    }

    @Test("control characters and non-ASCII bytes outside strings are rejected")
    func controlBytes() {
        #expect(checkBytes([0x7B, 0x00, 0x7D])?.message == "unexpected byte 0x00")
        #expect(checkBytes([0xEF, 0xBB, 0xBF, 0x7B, 0x7D])?.message == "unexpected byte 0xef")  // BOM
        #expect(checkBytes(Array("\"a".utf8) + [0x1F] + Array("\"".utf8))?.message == "control character in string")
    }

    @Test("100k-deep nesting is rejected quickly without stack overflow")
    func deepNesting() {
        let arrays = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        let err = checkBytes(arrays)
        #expect(err?.message == "nesting deeper than 128")
        #expect(err?.offset == 128)
        var objects: [UInt8] = []
        for _ in 0..<100_000 { objects += Array("{\"a\":".utf8) }
        #expect(checkBytes(objects)?.message == "nesting deeper than 128")
        // Complete, balanced but too deep.
        let balanced = Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000)
        #expect(checkBytes(balanced)?.message == "nesting deeper than 128")
    }

    @Test("depth 128 is allowed, 129 is not; the cap is configurable")
    func depthBoundary() {
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        let tooDeep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        #expect(check(ok) == nil)
        #expect(check(tooDeep)?.message == "nesting deeper than 128")
        #expect(JSONValidator.validate(Array(tooDeep.utf8), maxDepth: 200) == nil)
        #expect(JSONValidator.validate(Array("[[1]]".utf8), maxDepth: 1)?.message == "nesting deeper than 1")
    }

    @Test("validateObject requires a top-level object")
    func requiresObject() {
        for scalar in ["1", "\"s\"", "null", "true", "[]", "[{}]"] {
            #expect(JSONValidator.validateObject(Array(scalar.utf8))?.message == "expected a JSON object", "\(scalar)")
        }
        #expect(JSONValidator.validateObject(Array(" {\"a\":[1]} ".utf8)) == nil)
        #expect(JSONValidator.validateObject(Array("{\"a\":".utf8))?.message == "unexpected end of input")
        #expect(JSONValidator.validateObject(Array("".utf8))?.message == "unexpected end of input")
        #expect(Array("{}".utf8).withUnsafeBytes { JSONValidator.isValidObject($0) })
        #expect(!Array("[]".utf8).withUnsafeBytes { JSONValidator.isValidObject($0) })
    }

    @Test("a top-level scalar is valid JSON (RFC 8259)")
    func topLevelScalar() {
        #expect(check("42") == nil)
        #expect(check(" \"x\" ") == nil)
    }

    @Test("every generated W1 line validates")
    func w1Line() {
        let line = #"{"event_id":"e000000000","event_type":"play","profile_id":"p006556","title_id":9013,"ts":1699999998034,"duration_ms":6177968,"device":"tv","country":"KR","client":{"app_version":"2.18.54","os":"android"},"tags":[]}"#
        #expect(JSONValidator.validateObject(Array(line.utf8)) == nil)
    }

    @Test("truncating a valid document at any byte is rejected")
    func truncations() {
        let doc = Array(#"{"a":[1,2.5e3,"x\u00e9\n",true,false,null,{"b":{}}],"c":"€"}"#.utf8)
        #expect(checkBytes(doc) == nil)
        for n in 0..<doc.count {
            #expect(checkBytes(Array(doc[0..<n])) != nil, "prefix \(n)")
        }
    }

    @Test("random bytes never crash the validator")
    func randomBytes() {
        let seed = ProcessInfo.processInfo.environment["SLUICE_TEST_SEED"].flatMap { UInt64($0) } ?? 42
        print("random bytes never crash the validator: seed \(seed) (replay with SLUICE_TEST_SEED=\(seed))")
        var rng = SplitMix(seed: seed)
        let alphabet = Array(#"{}[]:,"\ u0123456789abcdef-+.eEtrunlsf"#.utf8) + [0x80, 0xC3, 0xE2, 0xF0, 0x0A]
        for _ in 0..<5000 {
            let len = Int(rng.next() % 40)
            let bytes = (0..<len).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            _ = checkBytes(bytes)
            // If accepted, the full parser must agree and round-trip.
            if checkBytes(bytes) == nil {
                let v = try? JSONValue.parse(bytes)
                #expect(v != nil)
                if let v { #expect((try? JSONValue.parse(v.encoded())) == v) }
            }
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
