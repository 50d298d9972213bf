/// `lookups: NAME: { file: { path, key }, refresh }`: a side input read by UDFs with `ctx.lookup(name, key)`.
public struct LookupSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var kind: Kind
    public var refresh: LookupRefresh

    public enum Kind: Sendable {
        case file(FileLookupSpec)
        case http(HTTPLookupSpec)
    }

    public init(name: String, location: SourceLocation, kind: Kind, refresh: LookupRefresh = .never) {
        self.name = name; self.location = location; self.kind = kind; self.refresh = refresh
    }
}

/// A table read from a file: JSON lines (one object per line) or CSV with a header row.
public struct FileLookupSpec: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable { case jsonl, csv }
    /// Absolute (resolved against the spec directory).
    public var path: String
    /// The top-level field whose value (as a string: 7 and "7" are one key) keys each row.
    public var key: String
    /// From the file extension: `.csv` is CSV, anything else JSON lines.
    public var format: Format
    public init(path: String, key: String, format: Format) { self.path = path; self.key = key; self.format = format }
}

/// When a lookup table is read again (and swapped atomically; a failed read keeps the old table).
public enum LookupRefresh: Sendable, Equatable {
    /// Read once, at start.
    case never
    /// Every so many milliseconds.
    case every(Int64)
    /// When the file changes (inotify on its directory: renames over it and symlink swaps count).
    case watch
}

/// A lookup answered by an HTTP service: `GET url` with `{...}` replaced by the key. Calls never
/// block a worker: the UDF is suspended while its request is in flight.
public struct HTTPLookupSpec: Sendable, Equatable {
    /// The URL template: its one `{name}` placeholder is replaced by the percent-encoded key.
    public var url: String
    /// At most `count` requests started in any `windowMs` (a sliding window); nil = unlimited.
    public var rate: (count: Int, windowMs: Int64)?
    /// Requests in flight at once.
    public var concurrency: Int
    /// Per attempt.
    public var timeoutMs: Int64
    /// Further attempts after a 5xx, a 429 or a connection error / timeout.
    public var retries: Int
    /// Exponential backoff between attempts, with jitter.
    public var backoffMinMs: Int64
    public var backoffMaxMs: Int64
    /// LRU cache: entries (0 = no cache), lifetime of a row and of a 404.
    public var cacheSize: Int
    public var ttlMs: Int64
    public var negativeTtlMs: Int64
    /// What a failed lookup does: raise in the UDF (the event is dead-lettered) or return nil.
    public var onError: OnError

    public enum OnError: String, Sendable, Equatable { case deadLetter = "dead_letter", none = "nil" }

    public init(url: String, rate: (count: Int, windowMs: Int64)? = nil, concurrency: Int = 32, timeoutMs: Int64 = 1000,
                retries: Int = 2, backoffMinMs: Int64 = 50, backoffMaxMs: Int64 = 2000, cacheSize: Int = 10_000,
                ttlMs: Int64 = 300_000, negativeTtlMs: Int64 = 30_000, onError: OnError = .deadLetter) {
        self.url = url; self.rate = rate; self.concurrency = concurrency; self.timeoutMs = timeoutMs
        self.retries = retries; self.backoffMinMs = backoffMinMs; self.backoffMaxMs = backoffMaxMs
        self.cacheSize = cacheSize; self.ttlMs = ttlMs; self.negativeTtlMs = negativeTtlMs; self.onError = onError
    }

    public static func == (a: HTTPLookupSpec, b: HTTPLookupSpec) -> Bool {
        a.url == b.url && a.rate?.count == b.rate?.count && a.rate?.windowMs == b.rate?.windowMs
            && a.concurrency == b.concurrency && a.timeoutMs == b.timeoutMs && a.retries == b.retries
            && a.backoffMinMs == b.backoffMinMs && a.backoffMaxMs == b.backoffMaxMs && a.cacheSize == b.cacheSize
            && a.ttlMs == b.ttlMs && a.negativeTtlMs == b.negativeTtlMs && a.onError == b.onError
    }
}
