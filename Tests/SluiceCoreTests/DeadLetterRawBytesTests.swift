import Foundation
import Testing
@testable import SluiceCore

/// A dead letter lets the original bytes be recovered exactly, even when they are not UTF-8.
@Suite struct DeadLetterRawBytesTests {
    static func record(_ raw: [UInt8]) throws -> [String: Any] {
        let enc = DeadLetter(component: "s", reason: "invalid JSON", source: "s", event: Event(bytes: raw, position: 3)).encoded()
        #expect(JSONValidator.validateObject(enc) == nil)
        return try #require(try JSONSerialization.jsonObject(with: Data(enc)) as? [String: Any])
    }

    @Test(arguments: [
        [0xFF],
        Array(#"{"a":"caf"#.utf8) + [0xE9] + Array(#""}"#.utf8),        // Latin-1 é
        [0xC3],                                                           // truncated sequence
        [0xED, 0xA0, 0x80],                                               // a UTF-16 surrogate
        [0xF4, 0x90, 0x80, 0x80, 0x00, 0x0D, 0x22],                       // past U+10FFFF, NUL, CR, quote
    ] as [[UInt8]])
    func invalidUTF8CarriesTheExactBytesInBase64(raw: [UInt8]) throws {
        let v = try Self.record(raw)
        let b64 = try #require(v["event_base64"] as? String)
        #expect(Data(base64Encoded: b64).map { Array($0) } == raw)
        #expect(b64 == Data(raw).base64EncodedString())
        #expect(v["event"] is String)   // still there, with U+FFFD, for people reading the file
    }

    @Test(arguments: [Array(#"{"s":"é😀"}"#.utf8), [0x00, 0x7F, 0x0D], []] as [[UInt8]])
    func validUTF8IsExactInEventAlone(raw: [UInt8]) throws {
        let v = try Self.record(raw)
        #expect(v["event_base64"] == nil)
        #expect(Array(((v["event"] as? String) ?? "?").utf8) == raw)
    }

    @Test(arguments: 0..<7)
    func base64PaddingIsRightForEveryLength(n: Int) {
        let raw = (0..<n).map { UInt8(truncatingIfNeeded: 0xF0 &+ $0 &* 37) }
        #expect(Base64.encode(raw) == Data(raw).base64EncodedString())
    }
}
