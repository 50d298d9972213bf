import Foundation

/// One HTTP request for `HTTPClient`.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    /// Sent in order. An `Expect:` header is added so curl never waits for `100 Continue`.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Milliseconds for the whole transfer (connecting included).
    public var timeoutMilliseconds: Int
    /// Response bodies are kept up to this many bytes (the rest is read and dropped).
    public var maxBodyBytes: Int

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [],
                timeoutMilliseconds: Int = 10_000, maxBodyBytes: Int = 1 << 20) {
        self.method = method; self.url = url; self.headers = headers; self.body = body
        self.timeoutMilliseconds = timeoutMilliseconds; self.maxBodyBytes = maxBodyBytes
    }
}

/// A response, whatever its status.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Response headers in order, names as sent (compare case-insensitively with `header(_:)`).
    public var headers: [(name: String, value: String)]
    /// The body, cut at the request's `maxBodyBytes`.
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status; self.headers = headers; self.body = body
    }

    /// The last value of header `name` (case-insensitive), if any.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.last { $0.name.lowercased() == lower }?.value
    }

    /// `Retry-After` as a delay in seconds (the delay-seconds form; an HTTP date gives nil).
    public var retryAfterSeconds: Double? {
        guard let v = header("Retry-After")?.trimmingCharacters(in: .whitespaces), let s = Double(v), s >= 0, s.isFinite else { return nil }
        return s
    }

    /// Up to `limit` bytes of the body as text (invalid UTF-8 repaired), for error messages.
    public func bodyExcerpt(_ limit: Int = 200) -> String {
        let cut = body.prefix(limit)
        let text = String(decoding: cut, as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        return body.count > limit ? text + "…" : text
    }
}

/// The request got no response: connection refused or reset, timeout, bad URL, client closed.
public struct HTTPTransportError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
