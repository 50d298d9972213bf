import Testing
@testable import SluiceCore

/// The validator's fast paths (16 bytes of a string at a time, 8 digits at a time, keys compared
/// 8 bytes at a time through a hashed child table) must give exactly the answers of the byte loop
/// they skip, wherever the interesting byte falls and however close the end of the input is.
@Suite("JSON fast paths agree with the byte-at-a-time rules")
struct JSONFastPathTests {
    private static func spaces(_ n: Int) -> [UInt8] { Array(repeating: UInt8(ascii: " "), count: n) }

    /// One byte (or sequence) placed inside a string, with what the validator must say about it.
    private static let stops: [(bytes: [UInt8], error: String?)] = [
        (Array("\\n".utf8), nil),
        (Array("\\u00e9".utf8), nil),
        (Array("\\\"".utf8), nil),
        ([0xC3, 0xA9], nil),                // é
        ([0xF0, 0x9F, 0x98, 0x80], nil),    // 😀
        ([0x01], "control character in string"),
        ([0x1F], "control character in string"),
        ([0xFF], "invalid UTF-8"),
        ([0xC3, 0x28], "invalid UTF-8"),
        (Array("\\x".utf8), "invalid escape"),
    ]

    @Test("a stop byte at every position of strings up to 40 bytes, at every distance from the end")
    func stringsAtEveryOffset() {
        for length in 0...40 {
            for position in 0...length {
                for (stop, error) in Self.stops {
                    for slack in [0, 1, 7, 8, 15, 16, 17] {
                        let prefix = Array("{\"k\":\"".utf8)
                        let text = Array(repeating: UInt8(ascii: "a"), count: position) + stop
                            + Array(repeating: UInt8(ascii: "b"), count: length - position)
                        let doc = prefix + text + Array("\"}".utf8) + Self.spaces(slack)
                        let got = JSONValidator.validate(doc)
                        #expect(got?.message == error, "length \(length) at \(position) slack \(slack): \(doc)")
                        if error != nil {
                            #expect(got?.offset == prefix.count + position, "\(doc)")
                        }
                    }
                }
            }
            // No stop at all: a plain string of this length, closed or not.
            for slack in [0, 1, 15, 16, 17] {
                let body = Array(repeating: UInt8(ascii: "a"), count: length)
                #expect(JSONValidator.validate(Array("[\"".utf8) + body + Array("\"]".utf8) + Self.spaces(slack)) == nil)
                let open = JSONValidator.validate(Array("[\"".utf8) + body)
                #expect(open?.message == "unterminated string" && open?.offset == 1, "length \(length)")
            }
        }
    }

    @Test("digit runs of every length with every kind of ending")
    func numbersOfEveryLength() {
        let endings: [(suffix: String, error: String?)] = [
            ("", nil), (".5", nil), (".25e-3", nil), ("e3", nil), ("E+2", nil),
            (".", "expected a digit after '.' in number"), ("e", "expected a digit in number exponent"),
            ("x", "unexpected character 'x'"),
        ]
        for digits in 1...24 {
            let run = (0..<digits).map { UInt8(ascii: "1") + UInt8($0 % 9) }
            for (suffix, error) in endings {
                for sign in ["", "-"] {
                    for slack in [0, 1, 8, 9] {
                        let inArray = Array("[\(sign)".utf8) + run + Array(suffix.utf8) + Array("]".utf8) + Self.spaces(slack)
                        #expect(JSONValidator.validate(inArray)?.message == error, "\(inArray)")
                        if error == nil {
                            let topLevel = Array(sign.utf8) + run + Array(suffix.utf8) + Self.spaces(slack)
                            #expect(JSONValidator.validate(topLevel) == nil, "\(topLevel)")
                        }
                    }
                }
            }
            let leadingZero = Array("[0".utf8) + run + Array("]".utf8)
            #expect(JSONValidator.validate(leadingZero)?.message == "leading zero in number")
        }
        #expect(JSONValidator.validate(Array("[12345678".utf8)) != nil)
        #expect(JSONValidator.validate(Array("12345678".utf8)) == nil)
    }

    @Test("keys of every length are found, and keys that differ only inside are not")
    func keysOfEveryLength() {
        for length in 0...24 {
            let key = String((0..<length).map { Character(UnicodeScalar(UInt8(ascii: "a") + UInt8($0 % 26))) })
            // Same length, first and last byte (the table's signature), different inside.
            var twin = Array(key.utf8)
            if length >= 3 { twin[length / 2] = UInt8(ascii: "Z") }
            let twinKey = String(decoding: twin, as: UTF8.self)
            let paths = JSONPathSet([[key], ["other"]])
            for slack in [0, 1, 2, 7, 8, 9, 16] {
                let doc = "{\"zz\":1,\"\(key)\":7,\"other\":\"x\"}" + String(repeating: " ", count: slack)
                let bytes = Array(doc.utf8)
                let spans = bytes.withUnsafeBytes { raw in
                    try? paths.validateAndFind(raw) { values in
                        (0..<2).map { i -> String? in
                            values[i].type == JSONKind.missing.rawValue ? nil
                                : String(decoding: bytes[values[i].off..<values[i].off + values[i].len], as: UTF8.self)
                        }
                    }.get()
                }
                #expect(spans == ["7", "\"x\""], "length \(length) slack \(slack)")
                if length >= 3 {
                    let other = Array("{\"\(twinKey)\":7}".utf8) + Self.spaces(slack)
                    let miss = other.withUnsafeBytes { raw in
                        try? paths.validateAndFind(raw) { values in Int(values[0].type) }.get()
                    }
                    #expect(miss == Int(JSONKind.missing.rawValue), "twin of length \(length)")
                }
                // The key as the very last bytes of the input (no slack for an 8-byte load).
                let tail = Array("{\"\(key)\":7}".utf8)
                let last = tail.withUnsafeBytes { raw in
                    try? paths.validateAndFind(raw) { values in Int(values[0].type) }.get()
                }
                #expect(last == Int(JSONKind.number.rawValue), "last key of length \(length)")
            }
        }
    }

    @Test("a node with many children finds each of them through its table")
    func manyChildren() {
        let keys = (0..<100).map { "field_\($0)" }
        let paths = JSONPathSet(keys.map { [$0] } + [["nested", "inner"]])
        let doc = "{" + keys.reversed().map { "\"\($0)\":\"\($0)\"" }.joined(separator: ",")
            + ",\"nested\":{\"inner\":true,\"field_1\":0}}"
        let bytes = Array(doc.utf8)
        let values = bytes.withUnsafeBytes { raw in
            try? paths.validateAndFind(raw) { values in
                (0..<values.count).map { String(decoding: bytes[values[$0].off..<values[$0].off + values[$0].len], as: UTF8.self) }
            }.get()
        }
        #expect(values == keys.map { "\"\($0)\"" } + ["true"])
    }
}
