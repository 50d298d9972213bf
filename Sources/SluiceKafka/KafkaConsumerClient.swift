import CRdKafka
import Foundation
import Synchronization
import SluiceCore

/// Where a consumer group starts reading a partition that has no committed offset (`auto.offset.reset`).
public enum KafkaStartPosition: String, Sendable {
    case earliest, latest
}

/// Settings of a Kafka source's consumer.
public struct KafkaConsumerConfig: Sendable {
    /// `bootstrap.servers`, e.g. `127.0.0.1:9092,127.0.0.1:9093`.
    public var brokers: String
    /// `group.id`.
    public var group: String
    /// Topics to subscribe to (a name starting with `^` is a regex, as in librdkafka).
    public var topics: [String]
    /// `auto.offset.reset` for partitions without a committed offset.
    public var start: KafkaStartPosition
    /// librdkafka properties, applied verbatim after Sluice's defaults (so they win), except
    /// `enable.auto.offset.store`, which is always `false` (offsets are stored only once acknowledged).
    public var options: [String: String]
    /// Prefetch cap: `queued.max.messages.kbytes` (default 16 MiB). An `options` entry overrides it.
    public var prefetchKBytes: Int
    /// Longest wait in one `rd_kafka_consumer_poll` when idle; bounds how long `stop`/`close` take to be noticed.
    public var pollTimeoutMs: Int32
    /// Log a warning when downstream has refused events (source paused) for this long, and again every such interval.
    public var stallWarningSeconds: Double
    /// Longest wait for the answer to the commit made on revoke and on close.
    public var commitTimeoutSeconds: Double
    /// Where to start each partition when it is first assigned (a restored checkpoint), instead of
    /// the group's committed offset.
    public var startOffsets: [TopicPartition: Int64] = [:]
    /// On the first assignment, start partitions not in `startOffsets` at the first offset at or after
    /// this time (ms since the epoch).
    public var startTime: Int64?

    public init(brokers: String, group: String, topics: [String], start: KafkaStartPosition = .earliest,
                options: [String: String] = [:], prefetchKBytes: Int = 16 * 1024, pollTimeoutMs: Int32 = 100,
                stallWarningSeconds: Double = 60, commitTimeoutSeconds: Double = 5) {
        self.brokers = brokers; self.group = group; self.topics = topics; self.start = start
        self.options = options; self.prefetchKBytes = prefetchKBytes; self.pollTimeoutMs = pollTimeoutMs
        self.stallWarningSeconds = stallWarningSeconds; self.commitTimeoutSeconds = commitTimeoutSeconds
    }
}

/// Counters of a consumer, for metrics and tests.
public struct KafkaConsumerStats: Sendable, Equatable {
    /// The partitions assigned now (event-time watermarks wait for each of them).
    public var assignment: Set<TopicPartition> = []
    /// Records received from librdkafka.
    public var received = 0
    /// Records handed to `offer` and accepted.
    public var delivered = 0
    /// Records received but not yet accepted by `offer` (held while paused). Bounded by one batch plus
    /// whatever librdkafka had already queued when the partitions were paused.
    public var held = 0
    /// True while the assigned partitions are paused because `offer` returned false.
    public var paused = false
    /// How many times the consumer paused.
    public var pauses = 0
    /// Messages waiting in librdkafka's consumer queue (sampled by the poll loop).
    public var prefetched = 0
    /// Partitions currently assigned to this consumer.
    public var assigned = 0
    /// Rebalance callbacks served (assign + revoke).
    public var rebalances = 0
    /// Offset commits that succeeded / failed (auto, revoke and close commits).
    public var commits = 0
    public var commitFailures = 0
    /// Lag of each assigned partition, sampled about once a second by the poll loop.
    public var lag: [PartitionLag] = []
}

/// How far a consumer is behind on one partition: the broker's high watermark (log end offset, as of
/// the last fetch) minus the offset that would be committed (the acknowledged prefix), or minus the
/// fetch position while nothing has been acknowledged yet.
public struct PartitionLag: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    /// Log end offset; nil until a fetch response has reported it.
    public var high: Int64?
    /// Next offset to commit (the acknowledged prefix + 1), if any.
    public var committed: Int64?
    /// Next offset to fetch, if known.
    public var position: Int64?
    /// `high - (committed ?? position)`, never negative; nil when either side is unknown.
    public var lag: Int64?
}

/// A Kafka consumer-group member for a Sluice source, with at-least-once acknowledgement.
///
/// **Threads.** `run` blocks its calling thread (give it a dedicated one) and drives librdkafka with
/// `rd_kafka_consumer_poll` timeouts: it serves rebalances, heartbeats and errors, and hands out events
/// in batches. `acknowledge` may be called from any thread. `close` may be called from any thread; it
/// makes a running `run` return, then commits and closes the consumer. The handle is only ever used by
/// the thread inside `run` or `close` (they are serialized by a lock).
///
/// **Backpressure.** When `offer` returns false, the assigned partitions of that offer's topics are
/// paused (all of them for a single `offer`; for a consumer shared by several sources, only the refusing
/// source's: `run(batchSize:stop:route:offers:)`). librdkafka drops its prefetched data for them and
/// fetches nothing more, the consumer keeps polling so it stays in the group (and serves the other
/// sources), and the refused batch is offered again every ~20 ms. Once accepted, the partitions are
/// resumed from the next offset. Memory stays at one batch per source plus the prefetch cap
/// (`queued.max.messages.kbytes`).
///
/// **Acknowledgement and commits.** Every record handed out is tracked per partition. `acknowledge`
/// marks records done (in any order, from any thread); only the contiguous acknowledged prefix of each
/// partition is stored (`rd_kafka_offsets_store` with offset + 1, `enable.auto.offset.store=false`), and
/// librdkafka's auto-commit (`enable.auto.commit=true`, every `auto.commit.interval.ms`, 1 s by default)
/// commits only stored offsets. If `enable.auto.commit=false` is given in options, the poll loop commits
/// the stored offsets itself at the same interval. On revoke: store, synchronous commit, unassign, and
/// forget the revoked partitions (later acks for them are ignored; their unacknowledged records will be
/// redelivered to the new owner). On a lost assignment nothing is committed. `close` stores, commits
/// synchronously and always runs `rd_kafka_consumer_close`.
///
/// Errors (brokers down, commit failures, ...) go to `log`; the consumer keeps retrying and never stops on them.
public final class KafkaConsumerClient: @unchecked Sendable {
    // `handle` and `queue` are guarded by `driver`: only the thread holding it (inside run() or close())
    // uses them. `core` is Sendable-by-discipline, see ConsumerCore.
    private let driver = NSLock()
    private var handle: OpaquePointer?
    private var queue: OpaquePointer?
    private let core: ConsumerCore
    public let config: KafkaConsumerConfig

    /// Creates the consumer and subscribes to `config.topics`. Throws on invalid configuration.
    public init(config: KafkaConsumerConfig, log: @escaping KafkaLog) throws(KafkaError) {
        guard !config.topics.isEmpty else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: "kafka consumer: no topics")
        }
        self.config = config
        var settings: [(String, String)] = [
            ("bootstrap.servers", config.brokers),
            ("group.id", config.group),
            ("client.id", "sluice"),
            ("auto.offset.reset", config.start.rawValue),
            ("queued.max.messages.kbytes", String(max(1, config.prefetchKBytes))),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "1000"),
            ("enable.partition.eof", "false"),
            // A fetch with no data waits at most 10 ms at the broker (librdkafka's default is 500 ms): an
            // event at a low rate is not held up to half a second (a broker answers a fetch as soon as
            // data arrives, so under load this changes nothing; idle, it is 100 small requests/s).
            ("fetch.wait.max.ms", "10"),
        ]
        for (key, value) in config.options.sorted(by: { $0.key < $1.key }) {
            if key == "enable.auto.offset.store" {
                if value != "false" { log("warning", "kafka consumer: ignoring enable.auto.offset.store=\(value): offsets are stored only once acknowledged") }
                continue
            }
            settings.append((key, value))
        }
        settings.append(("enable.auto.offset.store", "false"))
        let merged = Dictionary(settings, uniquingKeysWith: { _, new in new })
        let autoCommit = merged["enable.auto.commit"] != "false"
        let commitInterval = Double(merged["auto.commit.interval.ms"] ?? "1000").map { $0 / 1000 } ?? 1

        let core = ConsumerCore(log: log, autoCommit: autoCommit, commitInterval: commitInterval,
                                stallWarning: config.stallWarningSeconds, commitTimeout: config.commitTimeoutSeconds)
        let conf = try makeConf(settings, component: "kafka consumer")
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(core).toOpaque())
        rd_kafka_conf_set_log_cb(conf, consumerLogCallback)
        rd_kafka_conf_set_error_cb(conf, consumerErrorCallback)
        rd_kafka_conf_set_rebalance_cb(conf, consumerRebalanceCallback)
        rd_kafka_conf_set_offset_commit_cb(conf, consumerCommitCallback)
        let rk = try makeHandle(RD_KAFKA_CONSUMER, conf, component: "kafka consumer")
        core.startOffsets = config.startOffsets
        core.startTime = config.startTime
        self.core = core
        rd_kafka_poll_set_consumer(rk)

        let topics = rd_kafka_topic_partition_list_new(Int32(config.topics.count))!
        for t in config.topics { rd_kafka_topic_partition_list_add(topics, t, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(rk, topics)
        rd_kafka_topic_partition_list_destroy(topics)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_consumer_close(rk)
            rd_kafka_destroy(rk)
            throw KafkaError(err, "kafka consumer: subscribe to \(config.topics.joined(separator: ","))")
        }
        self.handle = rk
        self.queue = rd_kafka_queue_get_consumer(rk)
        log("info", "kafka consumer: librdkafka \(librdkafkaVersion), group '\(config.group)', topics \(config.topics.joined(separator: ",")), brokers \(config.brokers)")
    }

    deinit { close() }

    /// Polls until `stop()` returns true or `close()` is called, handing events to `offer` in batches of at most
    /// `batchSize` — when a batch is full, or at once when librdkafka has nothing more ready (low latency).
    /// `offer` must not block; returning false means "downstream is full": the consumer pauses, keeps polling,
    /// and offers the same batch again until it is accepted. Each event carries the payload and `EventMeta`
    /// (key, timestamp, headers, topic, partition, offset); `position` is the offset.
    /// Returning does not close the consumer: acknowledge what was delivered, then call `close()`.
    public func run(batchSize: Int, stop: () -> Bool, offer: ([Event]) -> Bool) {
        withoutActuallyEscaping(offer) { offer in run(batchSize: batchSize, stop: stop, route: { _ in 0 }, offers: [offer]) }
    }

    /// `run` for a consumer shared by several sources: each record goes to `offers[route(topic)]`
    /// (a topic of no route is skipped). Backpressure is per route: when a route's `offer` refuses a
    /// batch, only the partitions of that route's topics are paused; the other routes go on.
    public func run(batchSize: Int, stop: () -> Bool, route: @escaping (String) -> Int?, offers: [([Event]) -> Bool]) {
        run(batchSize: batchSize, stop: stop, route: route, batchAcks: false, offers: offers.map { offer in { events, _ in offer(events) } })
    }

    /// `run(batchSize:stop:route:offers:)` for batches acknowledged as a whole: each batch comes with
    /// its `KafkaBatchReceipt`, which `acknowledge(_:)` takes once every record of it is done. The
    /// consumer tracks one entry per partition and batch, not per record (per-record `acknowledge`
    /// calls do not apply to such a run).
    public func run(batchSize: Int, stop: () -> Bool, route: @escaping (String) -> Int?,
                    receipts offers: [([Event], KafkaBatchReceipt) -> Bool]) {
        run(batchSize: batchSize, stop: stop, route: route, batchAcks: true, offers: offers)
    }

    private func run(batchSize: Int, stop: () -> Bool, route: @escaping (String) -> Int?, batchAcks: Bool,
                     offers: [([Event], KafkaBatchReceipt) -> Bool]) {
        driver.lock(); defer { driver.unlock() }
        guard let rk = handle else { return }
        core.routeOf = route
        core.topics = [:]
        core.lastTopic = nil
        core.batchAcks = batchAcks
        core.runLoop(rk: rk, queue: queue, batchSize: max(1, batchSize), pollTimeoutMs: max(1, config.pollTimeoutMs),
                     stop: stop, offers: offers)
    }

    /// Acknowledges a batch handed out by `run(batchSize:stop:route:receipts:)` (any thread): every
    /// record it holds is done. Its offsets become committable once all earlier batches' are.
    public func acknowledge(_ receipt: KafkaBatchReceipt) {
        core.acknowledge(receipt)
    }

    /// Sets the rebalance hooks (before `run`): `assigned` runs inside the rebalance callback once
    /// partitions are assigned and before any of their records is handed out; `revoked` runs before
    /// the revoke's commit (`lost`: the assignment was lost, nothing will be committed).
    public func setRebalanceHooks(assigned: (@Sendable ([TopicPartition]) -> Void)?,
                                  revoked: (@Sendable ([TopicPartition], _ lost: Bool) -> Void)?) {
        driver.lock(); defer { driver.unlock() }
        core.onAssigned = assigned
        core.onRevoked = revoked
    }

    /// Acknowledges records handed out by `run` (any order, any thread). Only the contiguous acknowledged
    /// prefix of each partition becomes committable. Unknown positions (revoked partitions, duplicates,
    /// records already committed) are ignored.
    public func acknowledge(_ positions: some Sequence<(topic: String, partition: Int32, offset: Int64)>) {
        core.acknowledge(positions)
    }

    /// Acknowledges every record handed out below the given next offsets (a complete checkpoint covers them).
    public func acknowledge(below positions: [TopicPartition: Int64]) {
        core.acknowledge(below: positions)
    }

    /// Acknowledges events handed out by `run`, using their `meta` (events without Kafka metadata are ignored).
    public func acknowledge(events: some Sequence<Event>) {
        core.acknowledge(events.lazy.compactMap { e in
            e.meta.flatMap { m in
                if let t = m.topic, let p = m.partition, let o = m.offset { return (topic: t, partition: p, offset: o) }
                return nil
            }
        })
    }

    /// The next offset that would be committed for a partition (contiguous acknowledged prefix + 1), if any.
    public func committableOffset(topic: String, partition: Int32) -> Int64? {
        core.shared.withLock { $0.trackers[TopicPartition(topic: topic, partition: partition)]?.committable }
    }

    /// Current counters.
    public var stats: KafkaConsumerStats { core.shared.withLock { $0.stats } }

    /// Makes `run` return, stores and synchronously commits acknowledged offsets, and closes the consumer
    /// (`rd_kafka_consumer_close`: revoke, leave the group). Idempotent; safe from any thread.
    /// With the group coordinator unreachable this takes up to `commitTimeoutSeconds` for the commit plus
    /// librdkafka's own close wait (about `session.timeout.ms`); budget the shutdown grace period accordingly.
    public func close() {
        core.shared.withLock { $0.closeRequested = true }
        driver.lock(); defer { driver.unlock() }
        guard let rk = handle else { return }
        let started = Date()
        core.storeAcknowledged(rk)
        core.commitSync(rk, reason: "close")
        let committed = Date()
        core.closing = true
        let err = rd_kafka_consumer_close(rk)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { core.log("warning", "kafka consumer: close: \(KafkaError.describe(err))") }
        if let queue { rd_kafka_queue_destroy(queue) }
        rd_kafka_destroy(rk)
        handle = nil; queue = nil
        let took = String(format: "%.1f s (commit %.1f s)", Date().timeIntervalSince(started), committed.timeIntervalSince(started))
        core.log("info", "kafka consumer: closed (group '\(config.group)') in \(took)")
    }
}
