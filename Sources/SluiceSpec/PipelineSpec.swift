import SluiceCore

/// A position in a spec file, printed as `file:line:col`.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) { self.file = file; self.line = line; self.column = column }
    public var description: String { "\(file):\(line):\(column)" }
}

/// A validated pipeline: what `sluice run` executes. Built by `SpecLoader`.
public struct PipelineSpec: Sendable {
    public var name: String
    /// Path of the spec file as given by the user.
    public var file: String
    /// Absolute directory of the spec file; relative paths in the spec resolve against it.
    public var directory: String
    public var udfs: UDFSettings
    /// Components in the order they appear in the file.
    public var sources: [SourceSpec]
    public var transforms: [TransformSpec]
    public var sinks: [SinkSpec]
    /// Where rejected events go; nil means stderr as JSON lines.
    public var deadLetter: SinkSpec?
    public var settings: Settings
    public var tests: [TestCase]
    /// `lookups:` — tables UDFs read with `ctx.lookup(name, key)`.
    public var lookups: [LookupSpec]

    public init(name: String, file: String, directory: String, udfs: UDFSettings, sources: [SourceSpec],
                transforms: [TransformSpec], sinks: [SinkSpec], deadLetter: SinkSpec?, settings: Settings, tests: [TestCase],
                lookups: [LookupSpec] = []) {
        self.lookups = lookups
        self.name = name; self.file = file; self.directory = directory; self.udfs = udfs; self.sources = sources
        self.transforms = transforms; self.sinks = sinks; self.deadLetter = deadLetter; self.settings = settings; self.tests = tests
    }
}

public enum ReloadMode: String, Sendable { case watch, signal, off }

public struct UDFSettings: Sendable {
    /// Absolute path of the UDF directory (default: `../udfs` relative to the spec).
    public var dir: String
    public var reload: ReloadMode
    /// Per call instruction budget (default 1,000,000).
    public var instructionLimit: Int
    /// Per Lua state memory budget in bytes (default 64 MiB).
    public var memoryLimit: Int
    public init(dir: String, reload: ReloadMode = .off, instructionLimit: Int = 1_000_000, memoryLimit: Int = 64 << 20) {
        self.dir = dir; self.reload = reload; self.instructionLimit = instructionLimit; self.memoryLimit = memoryLimit
    }
}

/// `module.function`, resolved against the UDF directory (`udfs/module.lua`).
public struct UDFRef: Sendable, Hashable, CustomStringConvertible {
    public var module: String
    public var function: String
    public var location: SourceLocation
    public init(module: String, function: String, location: SourceLocation) {
        self.module = module; self.function = function; self.location = location
    }
    public var description: String { "\(module).\(function)" }
}

public struct SourceSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var format: DataFormat
    public var kind: Kind
    /// `time`, `lateness`, `idle`: event time and the watermark of this source.
    public var time: EventTimeSpec = EventTimeSpec()

    public enum Kind: Sendable {
        /// `path` is absolute (resolved against the spec directory).
        case file(path: String, follow: Bool)
        case stdin
        /// `count` nil = unbounded; `ratePerSecond` nil = as fast as possible.
        case generate(count: Int?, ratePerSecond: Double?, udf: UDFRef)
        case kafka(KafkaSourceSpec)
    }
    public init(name: String, location: SourceLocation, format: DataFormat = .json, kind: Kind) {
        self.name = name; self.location = location; self.format = format; self.kind = kind
    }
}

/// A boolean test on an event: inline Lua, a Lua UDF, or a declarative field match that never enters Lua.
public enum Predicate: Sendable {
    case lua(expression: String, location: SourceLocation)
    case udf(UDFRef)
    case match(MatchSpec)
}

public struct TransformSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    /// Names of upstream sources or transforms.
    public var from: [String]
    public var kind: Kind

    public enum Kind: Sendable {
        case filter(Predicate)
        case map(UDFRef)
        case flatMap(UDFRef)
        case project([ProjectField])
        case join(JoinSpec)
        case dedup(DedupSpec)
        case aggregate(AggregateSpec)
    }
    /// Workers of the stage a stateful transform starts (nil = `settings.workers`).
    public var parallelism: Int?
    /// `state: { max_keys, max_bytes }` of a stateful transform.
    public var state: StateLimits = StateLimits()

    /// True for `join`, `dedup` and `aggregate`: keyed, on event time, starting a new stage.
    public var isStateful: Bool {
        switch kind {
        case .join, .dedup, .aggregate: return true
        default: return false
        }
    }

    /// The keyed inputs of a stateful transform (left then right for a join); empty for stateless ones.
    public var keyedInputs: [KeyedInput] {
        switch kind {
        case .join(let j): return [j.left, j.right]
        case .dedup(let d): return [d.input]
        case .aggregate(let a): return [a.input]
        default: return []
        }
    }

    public init(name: String, location: SourceLocation, from: [String], kind: Kind) {
        self.name = name; self.location = location; self.from = from; self.kind = kind
    }
}

public enum WhenFull: String, Sendable {
    case block
    case dropNewest = "drop_newest"
    case deadLetter = "dead_letter"
}

public struct QueueSpec: Sendable {
    /// Capacity in events (a batch larger than the capacity is still accepted into an empty queue).
    public var capacity: Int
    public var whenFull: WhenFull
    public init(capacity: Int, whenFull: WhenFull = .block) { self.capacity = capacity; self.whenFull = whenFull }
}

public struct SinkSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var from: [String]
    public var when: Predicate?
    public var format: DataFormat
    public var queue: QueueSpec
    /// `retry:`; nil = the default for the sink's type (`RetrySpec.none` or `.network`).
    public var retry: RetrySpec?
    public var kind: Kind

    public enum Kind: Sendable {
        /// `path` is absolute (resolved against the spec directory). Parent directories are created.
        case file(path: String)
        case stdout
        case stderr
        case kafka(KafkaSinkSpec)
        case http(HTTPSinkSpec)
        case memcached(MemcachedSinkSpec)
    }
    public init(name: String, location: SourceLocation, from: [String], when: Predicate? = nil, format: DataFormat = .json,
                queue: QueueSpec, retry: RetrySpec? = nil, kind: Kind) {
        self.name = name; self.location = location; self.from = from; self.when = when
        self.format = format; self.queue = queue; self.retry = retry; self.kind = kind
    }

    /// The retry policy in force: the spec's, or the default for this sink's type.
    public var effectiveRetry: RetrySpec {
        if let retry { return retry }
        switch kind {
        case .http, .memcached: return .network
        default: return .none
        }
    }
}

public struct Settings: Sendable {
    /// Default sink queue capacity, in events.
    public var queueCapacity: Int
    /// Events per batch read from a source.
    public var batchSize: Int
    /// Worker threads for stateless transforms; nil = one per core.
    public var workers: Int?
    /// The admin HTTP endpoint (`/metrics`, `/health`, `/ready`, `POST /reload`); nil = none.
    public var admin: AdminSpec?
    /// `max_drift` (ms, default 5 min): a source whose watermark runs further ahead of the slowest
    /// input of a stateful transform it feeds is paused until the others catch up.
    public var maxDrift: Int64 = 300_000
    /// `grace` (ms, default 30 s): after SIGTERM, how long draining may take before the process
    /// exits 1, naming the sinks that still hold events (their acknowledgements unreleased).
    public var grace: Int64 = 30_000
    /// `max_event_bytes` (default 1 MiB): larger events are dead-lettered `too_large`; nil = the default.
    public var maxEventBytes: Int?
    /// `queue_bytes` (default 64 MiB): what each queue (the work queue, every sink's and every
    /// stateful stage worker's) may hold in bytes, besides its capacity in events.
    public var queueBytes: Int = 64 << 20
    /// `linger` (ms, default 5): the longest a batch waits for more events before it goes on; for
    /// now the Kafka sink's `linger.ms` (sources hand a partial batch on as soon as no more input
    /// is ready, so they never wait).
    public var linger: Int64 = 5
    /// `checkpoint: { dir, every, keep }`; nil = no checkpoints.
    public var checkpoint: CheckpointSettings?
    public init(queueCapacity: Int = 1024, batchSize: Int = 256, workers: Int? = nil) {
        self.queueCapacity = queueCapacity; self.batchSize = batchSize; self.workers = workers
    }
}

/// `settings.checkpoint`: where checkpoints are written, how often, and how many are kept.
public struct CheckpointSettings: Sendable, Equatable {
    /// Absolute directory (resolved against the spec's directory; default `.sluice/PIPELINE`).
    public var dir: String
    /// Interval between checkpoints, ms (default 10 s).
    public var every: Int64
    /// Complete checkpoints kept (default 5); older ones are deleted once a newer one is durable.
    public var keep: Int
    public init(dir: String, every: Int64 = 10_000, keep: Int = 5) { self.dir = dir; self.every = every; self.keep = keep }
}

/// One entry of the `tests:` block: events fed to sources, events expected at sinks (exact, in order).
public struct TestCase: Sendable {
    public var name: String
    public var location: SourceLocation
    /// Source name -> events (JSON objects, or strings for `format: text`).
    public var input: [(String, [JSONValue])]
    /// Sink name -> expected events. The special name `dead_letter` checks the dead letter count.
    public var expect: [(String, [JSONValue])]
    public init(name: String, location: SourceLocation, input: [(String, [JSONValue])], expect: [(String, [JSONValue])]) {
        self.name = name; self.location = location; self.input = input; self.expect = expect
    }
}

/// `kafka:` source: a consumer group reading topics, at-least-once.
public struct KafkaSourceSpec: Sendable, Equatable {
    public var brokers: String
    public var topics: [String]
    /// nil = the pipeline name.
    public var group: String?
    /// `earliest` or `latest`, used when the group has no committed offset.
    public var start: String
    /// Passed to librdkafka verbatim.
    public var options: [String: String]
    public init(brokers: String, topics: [String], group: String? = nil, start: String = "earliest", options: [String: String] = [:]) {
        self.brokers = brokers; self.topics = topics; self.group = group; self.start = start; self.options = options
    }
}

/// `kafka:` sink: an idempotent producer writing to one topic.
public struct KafkaSinkSpec: Sendable, Equatable {
    public var brokers: String
    public var topic: String
    /// Message key template such as `'{profile_id}'`; nil = no key.
    public var key: String?
    /// Passed to librdkafka verbatim (applied after Sluice's defaults).
    public var options: [String: String]
    public init(brokers: String, topic: String, key: String? = nil, options: [String: String] = [:]) {
        self.brokers = brokers; self.topic = topic; self.key = key; self.options = options
    }
}

/// `settings.admin.listen: HOST:PORT` (port 0 = any free port, printed at start).
public struct AdminSpec: Sendable, Equatable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
}
