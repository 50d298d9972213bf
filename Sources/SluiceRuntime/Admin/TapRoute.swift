import Foundation
import SluiceCore

/// `GET /tap/COMPONENT?n=20`: streams up to `n` sampled events leaving a component as JSON lines
/// (an event that is not a JSON object, a `format: text` line say, as a JSON string), then closes.
/// One reader per component at a time (409 for a second one). The stream also ends when the reader
/// goes away, stops reading for 5 s, or the pipeline stops. Sampling drops whatever the reader is
/// too slow for (`TapPoints`), and a fast reader gets at most one event per `minimumInterval`: a
/// tap never slows the pipeline.
struct TapRoute: Sendable {
    static let defaultCount = 20
    static let maxCount = 100_000
    /// At most 1,000 sampled events a second per tap: between two, the slot is not armed at all.
    static let minimumInterval = Duration.milliseconds(1)

    let taps: TapPoints
    let phase: PipelinePhase

    func respond(component escaped: String, query: [String: String]) -> AdminServer.Response {
        let component = Self.percentDecoded(escaped)
        guard let slot = taps.slot(named: component) else {
            return AdminServer.Response(status: 404, body: "no component '\(component)'; components: \(taps.names.joined(separator: ", "))\n")
        }
        var n = Self.defaultCount
        if let text = query["n"] {
            guard let v = Int(text), v >= 1, v <= Self.maxCount else {
                return AdminServer.Response(status: 400, body: "n must be an integer from 1 to \(Self.maxCount)\n")
            }
            n = v
        }
        guard taps.open(slot) else {
            return AdminServer.Response(status: 409, body: "a tap on '\(component)' is already open (one reader per component)\n")
        }
        let taps = taps, phase = phase, count = n
        return AdminServer.Response(status: 200, contentType: "application/x-ndjson", body: "", stream: { out in
            defer { taps.close(slot) }
            let clock = ContinuousClock()
            for _ in 0..<count {
                let armed = clock.now
                guard let event = taps.next(slot, cancelled: { phase.current == .stopped || out.peerClosed }) else { return }
                guard out.write(Self.line(event)) else { return }
                let next = armed + Self.minimumInterval
                if clock.now < next { Thread.sleep(forTimeInterval: Double((next - clock.now).components.attoseconds) / 1e18) }
            }
        }, refused: { taps.close(slot) })
    }

    /// `%XX` sequences decoded (component names may hold any character).
    static func percentDecoded(_ s: String) -> String {
        var out: [UInt8] = []
        var bytes = Array(s.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "%"), bytes.count >= 2, let v = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) {
                out.append(v)
                bytes = bytes.dropFirst(2)
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The event as one JSON line: a JSON object as it is, anything else as a JSON string.
    static func line(_ event: [UInt8]) -> [UInt8] {
        let isObject = event.withUnsafeBytes { JSONValidator.validateObject($0) == nil }
        var out: [UInt8] = []
        if isObject && !event.contains(10) {
            out = event
        } else {
            JSONWriter.appendString(bytes: event, to: &out)
        }
        out.append(10)
        return out
    }
}
