import SluiceCore

/// Event time of a source (`time:`, `lateness:`, `idle:`): where an event's time comes from and how
/// the source's watermark is derived from it. Durations are milliseconds.
public struct EventTimeSpec: Sendable {
    /// Dotted path of the event-time field (integer ms since the epoch or an RFC 3339 string);
    /// nil = the Kafka timestamp, else the arrival time.
    public var field: [String]?
    /// How out of order events may be: watermark = largest time seen - lateness (default 0).
    public var lateness: Int64
    /// An input that sent nothing for this long (processing time) stops holding the watermark back (default 30 s).
    public var idle: Int64
    public init(field: [String]? = nil, lateness: Int64 = 0, idle: Int64 = 30_000) {
        self.field = field; self.lateness = lateness; self.idle = idle
    }
}

/// `state: { max_keys, max_bytes }` of a stateful transform; nil = unlimited.
public struct StateLimits: Sendable, Equatable {
    public var maxKeys: Int?
    public var maxBytes: Int?
    public init(maxKeys: Int? = nil, maxBytes: Int? = nil) { self.maxKeys = maxKeys; self.maxBytes = maxBytes }
}

/// One input of a keyed transform: the upstream component and the key template (`'{a}:{b.c}'`).
public struct KeyedInput: Sendable {
    public var from: String
    public var key: KeyTemplate
    public var location: SourceLocation
    public init(from: String, key: KeyTemplate, location: SourceLocation) {
        self.from = from; self.key = key; self.location = location
    }
}

/// `join:` — an interval join on event time (the co-process joiner).
public struct JoinSpec: Sendable {
    public enum Emit: String, Sendable { case complete, eager }
    public enum Unmatched: String, Sendable { case drop, emit }
    public var left: KeyedInput
    public var right: KeyedInput
    /// L matches R when R.time - within <= L.time <= R.time (ms).
    public var within: Int64
    /// `merge(lefts, right, ctx) -> event | list | nil`; nil = `{"left": [...], "right": R}`.
    public var merge: UDFRef?
    public var emit: Emit
    public var unmatched: Unmatched
    public init(left: KeyedInput, right: KeyedInput, within: Int64, merge: UDFRef? = nil,
                emit: Emit = .complete, unmatched: Unmatched = .drop) {
        self.left = left; self.right = right; self.within = within; self.merge = merge
        self.emit = emit; self.unmatched = unmatched
    }
}

/// `dedup:` — the first event of a key passes; later ones within `within` (ms) of it are dropped.
public struct DedupSpec: Sendable {
    public var input: KeyedInput
    public var within: Int64
    public init(input: KeyedInput, within: Int64) { self.input = input; self.within = within }
}

/// Windows of `aggregate:` (sizes in ms), aligned to the epoch.
public enum WindowSpec: Sendable, Equatable {
    case tumbling(size: Int64)
    case sliding(size: Int64, every: Int64)
    case session(gap: Int64)
    /// One running state per key (a materialized view).
    case none
}

/// A declarative reducer: output field <- operation over an input path.
public struct ReducerSpec: Sendable {
    public enum Op: String, Sendable {
        case count, sum, min, max, avg, first, last
        case countDistinct = "count_distinct"
        case collect
    }
    /// Output field name.
    public var output: String
    public var op: Op
    /// Input path (nil only for `count`).
    public var path: [String]?
    public init(output: String, op: Op, path: [String]? = nil) { self.output = output; self.op = op; self.path = path }
}

/// `aggregate:` — windowed aggregates and materialized views.
public struct AggregateSpec: Sendable {
    public enum Reduce: Sendable {
        case reducers([ReducerSpec])
        /// `reduce(state, event, ctx) -> state`.
        case udf(UDFRef)
    }
    public enum Emit: Sendable, Equatable {
        case onWindowClose
        /// Keys changed since the last emit, each time the watermark crosses a multiple of D (ms).
        case every(Int64)
        case onChange
    }
    public var input: KeyedInput
    public var window: WindowSpec
    public var reduce: Reduce
    public var emit: Emit
    public init(input: KeyedInput, window: WindowSpec, reduce: Reduce, emit: Emit) {
        self.input = input; self.window = window; self.reduce = reduce; self.emit = emit
    }
}
