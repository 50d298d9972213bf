import Testing
@testable import SluiceCore

@Suite("DeadLetter encoding")
struct DeadLetterJSONTests {
    @Test("encoded dead letters are valid JSON objects that parse back")
    func roundTrip() throws {
        let raw: [UInt8] = Array(#"{"a":1,"#.utf8) + [0xFF, 0x0A, 0x22, 0x5C, 0x01]
        let dl = DeadLetter(component: "clean", reason: "unexpected character 'x' at byte 3",
                            detail: "stack traceback:\n\t[C]: in ?", source: "plays",
                            event: Event(bytes: raw, position: 17))
        let enc = dl.encoded()
        #expect(JSONValidator.validateObject(enc) == nil)
        let v = try JSONValue.parse(enc)
        #expect(v["component"] == .string("clean"))
        #expect(v["reason"] == .string("unexpected character 'x' at byte 3"))
        #expect(v["detail"] == .string("stack traceback:\n\t[C]: in ?"))
        #expect(v["source"] == .string("plays"))
        #expect(v["position"] == .int(17))
        // Invalid UTF-8 in the payload becomes U+FFFD; everything else is kept.
        #expect(v["event"] == .string("{\"a\":1,\u{FFFD}\n\"\\\u{1}"))
    }

    @Test("a valid payload is preserved exactly inside the event string")
    func validPayload() throws {
        let line = #"{"event_type":"play","s":"é\u00e9"}"#
        let dl = DeadLetter(component: "c", reason: "r", event: Event(line))
        let v = try JSONValue.parse(dl.encoded())
        #expect(v["event"] == .string(line))
        #expect(v["detail"] == nil)
        #expect(v["position"] == nil)
    }
}
