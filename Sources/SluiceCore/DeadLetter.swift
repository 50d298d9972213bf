/// An event that could not be processed, with the reason, bound for the dead letter sink.
public struct DeadLetter: Sendable {
    /// The component that rejected the event (source, transform or sink name).
    public var component: String
    /// Short reason, e.g. the Lua error message or the JSON syntax error.
    public var reason: String
    /// Longer detail such as a Lua traceback.
    public var detail: String?
    /// The source the event came from and its position there.
    public var source: String?
    public var event: Event

    public init(component: String, reason: String, detail: String? = nil, source: String? = nil, event: Event) {
        self.component = component; self.reason = reason; self.detail = detail
        self.source = source; self.event = event
    }

    /// One JSON object: `{"component":..,"reason":..,"detail":..,"source":..,"position":..,"event":"<raw payload>"}`,
    /// plus `"event_base64"` when the payload is not valid UTF-8. `event` is the payload as a JSON
    /// string: exact for UTF-8 payloads (malformed JSON included); invalid UTF-8 sequences in it become
    /// U+FFFD, so `event_base64` then carries the exact bytes. Documented in docs/pipeline-format.md (`dead_letter`).
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(event.bytes.count + reason.utf8.count + 96)
        out.append(contentsOf: Array(#"{"component":"#.utf8))
        JSONWriter.appendString(component, to: &out)
        out.append(contentsOf: Array(#","reason":"#.utf8))
        JSONWriter.appendString(reason, to: &out)
        if let detail {
            out.append(contentsOf: Array(#","detail":"#.utf8))
            JSONWriter.appendString(detail, to: &out)
        }
        if let source {
            out.append(contentsOf: Array(#","source":"#.utf8))
            JSONWriter.appendString(source, to: &out)
        }
        if event.position > 0 {
            out.append(contentsOf: Array(#","position":"#.utf8))
            out.append(contentsOf: Array(String(event.position).utf8))
        }
        out.append(contentsOf: Array(#","event":"#.utf8))
        JSONWriter.appendString(bytes: event.bytes, to: &out)
        if String(validating: event.bytes, as: UTF8.self) == nil {
            out.append(contentsOf: Array(#","event_base64":""#.utf8))
            Base64.append(event.bytes, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return out
    }
}
