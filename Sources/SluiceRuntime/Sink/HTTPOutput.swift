import Foundation
import Synchronization
import SluiceHTTP
import SluiceSpec

/// `http:` sink: POSTs a batch as JSON lines (`ndjson`) or one JSON array (`json_array`), at most
/// `batch` events a request (the runner merges queued batches up to that, waiting at most `linger`).
///
/// A 2xx acknowledges the request's events. 429 and 503 are retried after the server's
/// `Retry-After`; other 5xx and connection errors are retried with backoff (by `RetryingOutput`);
/// other statuses (4xx, and anything else not 2xx) fail permanently with the status and a body
/// excerpt, so the events go to the dead letter sink at once.
///
/// `send` waits for its requests' outcomes on the sink's thread, so one sink has one batch in flight;
/// the transfers themselves run on the client's I/O thread (libcurl multi).
final class HTTPOutput: SinkOutput {
    let sink: String
    let spec: HTTPSinkSpec
    let client: HTTPClient
    private let headers: [(name: String, value: String)]

    init(sink: String, spec: HTTPSinkSpec) throws(SinkError) {
        self.sink = sink
        self.spec = spec
        do { client = try HTTPClient(name: sink) }
        catch { throw SinkError(sink: sink, message: "\(error)") }
        let contentType = spec.format == .ndjson ? "application/x-ndjson" : "application/json"
        var h = spec.headers
        if !h.contains(where: { $0.name.lowercased() == "content-type" }) { h.insert(("Content-Type", contentType), at: 0) }
        headers = h
    }

    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
        var failures: [DeliveryFailure] = []
        var start = 0
        while start < batch.count {
            let end = min(batch.count, start + spec.batch)
            let request = HTTPRequest(method: "POST", url: spec.url, headers: headers, body: body(batch, start..<end),
                                      timeoutMilliseconds: Int(spec.timeout), maxBodyBytes: 4096)
            if let failure = Self.outcome(client.sendAndWait(request)) {
                failures += (start..<end).map { DeliveryFailure(index: $0, reason: failure.reason, retry: failure.retry) }
            }
            start = end
        }
        done(failures)
    }

    /// The request body for events `range` of `batch`.
    private func body(_ batch: SinkBatch, _ range: Range<Int>) -> [UInt8] {
        let from = range.lowerBound == 0 ? 0 : batch.ends[range.lowerBound - 1]
        let to = batch.ends[range.upperBound - 1]
        switch spec.format {
        case .ndjson:
            return Array(batch.data[from..<to])
        case .jsonArray:
            var out: [UInt8] = [UInt8(ascii: "[")]
            out.reserveCapacity(to - from + 2)
            for i in range {
                if i > range.lowerBound { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: batch.payload(i))
            }
            out.append(UInt8(ascii: "]"))
            return out
        }
    }

    /// nil for a 2xx; otherwise the reason and whether a retry may help.
    static func outcome(_ result: Result<HTTPResponse, HTTPTransportError>) -> (reason: String, retry: RetryAdvice)? {
        switch result {
        case .failure(let error):
            return ("http: \(error.message)", .transient(after: nil))
        case .success(let r):
            if (200..<300).contains(r.status) { return nil }
            let excerpt = r.bodyExcerpt()
            let reason = "http: status \(r.status)" + (excerpt.isEmpty ? "" : ": \(excerpt)")
            switch r.status {
            case 429, 503:
                return (reason, .transient(after: r.retryAfterSeconds.map { .milliseconds(Int64($0 * 1000)) }))
            case 408, 500..<600:
                return (reason, .transient(after: nil))
            default:
                return (reason, .permanent)
            }
        }
    }

    func close() { client.close() }
}
