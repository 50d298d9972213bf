/// `retry: { max: N, backoff: MIN..MAX }` of a sink: up to `max` more attempts after the first,
/// waiting an exponentially growing, jittered delay between `minBackoff` and `maxBackoff`.
public struct RetrySpec: Sendable, Equatable {
    /// Retries after the first attempt (0 = none: a failure dead-letters at once).
    public var max: Int
    /// Milliseconds.
    public var minBackoff: Int64
    /// Milliseconds.
    public var maxBackoff: Int64
    public init(max: Int, minBackoff: Int64, maxBackoff: Int64) {
        self.max = max; self.minBackoff = minBackoff; self.maxBackoff = maxBackoff
    }

    /// File, stdout, stderr and Kafka sinks: no retries unless asked (librdkafka retries on its own).
    public static let none = RetrySpec(max: 0, minBackoff: 100, maxBackoff: 10_000)
    /// HTTP and memcached sinks: a server away for a minute or so loses nothing.
    public static let network = RetrySpec(max: 10, minBackoff: 100, maxBackoff: 10_000)
}

/// `http:` sink: POSTs batches of events to `url`.
public struct HTTPSinkSpec: Sendable, Equatable {
    public enum Format: String, Sendable { case ndjson, jsonArray = "json_array" }
    public var url: String
    /// Events per request at most.
    public var batch: Int
    /// Milliseconds a partial batch may wait for more events.
    public var linger: Int64
    public var format: Format
    /// Sent with every request, in order.
    public var headers: [(name: String, value: String)]
    /// Milliseconds for a whole request.
    public var timeout: Int64
    public init(url: String, batch: Int = 500, linger: Int64 = 50, format: Format = .ndjson,
                headers: [(name: String, value: String)] = [], timeout: Int64 = 10_000) {
        self.url = url; self.batch = batch; self.linger = linger; self.format = format; self.headers = headers; self.timeout = timeout
    }
    public static func == (a: Self, b: Self) -> Bool {
        a.url == b.url && a.batch == b.batch && a.linger == b.linger && a.format == b.format && a.timeout == b.timeout
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }
}

/// `memcached:` sink: `set` of each event under its rendered key.
public struct MemcachedSinkSpec: Sendable, Equatable {
    /// `host:port` entries, hashed consistently (ketama).
    public var servers: [String]
    /// Key template, as for Kafka keys.
    public var key: String
    /// Seconds; 0 = never expires.
    public var ttl: Int64
    /// Milliseconds to connect and for each reply.
    public var timeout: Int64
    /// Connections to each server, used at once (a key always takes the same one).
    public var connections: Int
    public init(servers: [String], key: String, ttl: Int64 = 0, timeout: Int64 = 1_000, connections: Int = 1) {
        self.servers = servers; self.key = key; self.ttl = ttl; self.timeout = timeout; self.connections = connections
    }
}
