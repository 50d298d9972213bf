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
}

/// A Kafka consumer-group member for a Sluice source, with at-least-once acknowledgement.
///
/// **Threads.** `run` blocks its calling thread (give it a dedicated one) and drives librdkafka with
/// `rd_kafka_consumer_poll` timeouts: it serves rebalances, heartbeats and errors, and hands out events
/// in batches. `acknowledge` may be called from any thread. `close` may be called from any thread; it
/// makes a running `run` return, then commits and closes the consumer. The handle is only ever used by
/// the thread inside `run` or `close` (they are serialized by a lock).
///
/// **Backpressure.** When `offer` returns false, all assigned partitions are paused (librdkafka drops
/// its prefetched data for them and fetches nothing more), the consumer keeps polling so it stays in the
/// group, and the refused batch is offered again every ~20 ms. Once accepted, the partitions are resumed
/// from the next offset. Memory stays at one batch plus the prefetch cap (`queued.max.messages.kbytes`).
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
        driver.lock(); defer { driver.unlock() }
        guard let rk = handle else { return }
        core.runLoop(rk: rk, queue: queue, batchSize: max(1, batchSize), pollTimeoutMs: max(1, config.pollTimeoutMs),
                     stop: stop, offer: offer)
    }

    /// Acknowledges records handed out by `run` (any order, any thread). Only the contiguous acknowledged
    /// prefix of each partition becomes committable. Unknown positions (revoked partitions, duplicates,
    /// records already committed) are ignored.
    public func acknowledge(_ positions: some Sequence<(topic: String, partition: Int32, offset: Int64)>) {
        core.acknowledge(positions)
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

/// State shared by the poll thread, librdkafka callbacks and acknowledging threads.
///
/// `shared` is a Mutex (acks arrive from any thread). The other mutable fields (`buffer`, `paused`,
/// `topicNames`, timers) are used only by the thread that currently drives the handle: the one inside
/// `KafkaConsumerClient.run` or `.close` (serialized by its `driver` lock); the rebalance/error/commit
/// callbacks run on that same thread, from inside `rd_kafka_consumer_poll` / `rd_kafka_consumer_close`.
/// The log callback only reads the immutable `log`.
final class ConsumerCore: @unchecked Sendable {
    struct Shared {
        var trackers: [TopicPartition: OffsetTracker] = [:]
        var dirty: Set<TopicPartition> = []
        var closeRequested = false
        var stats = KafkaConsumerStats()
    }

    let log: KafkaLog
    let shared = Mutex(Shared())
    let autoCommit: Bool
    let commitInterval: Double
    let stallWarning: Double
    let commitTimeout: Double

    // Driver-thread-only state.
    private var buffer: [Event] = []
    private var paused = false
    private var pausedSince = 0.0
    private var lastStallWarning = 0.0
    private var lastCommit = 0.0
    private var topicNames: [OpaquePointer: String] = [:]
    /// Set by close() before rd_kafka_consumer_close (driver thread).
    var closing = false
    private var lastCommitError = RD_KAFKA_RESP_ERR_NO_ERROR
    private var lastCommitErrorLogged = 0.0

    init(log: @escaping KafkaLog, autoCommit: Bool, commitInterval: Double, stallWarning: Double, commitTimeout: Double) {
        self.log = log; self.autoCommit = autoCommit; self.commitInterval = commitInterval; self.stallWarning = stallWarning
        self.commitTimeout = commitTimeout
    }

    // MARK: poll loop (driver thread)

    func runLoop(rk: OpaquePointer, queue: OpaquePointer?, batchSize: Int, pollTimeoutMs: Int32,
                 stop: () -> Bool, offer: ([Event]) -> Bool) {
        lastCommit = now()
        while !stop() && !shared.withLock({ $0.closeRequested }) {
            storeAcknowledged(rk)
            if !autoCommit && now() - lastCommit >= commitInterval {
                lastCommit = now()
                let err = rd_kafka_commit(rk, nil, 1)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
                    log("warning", "kafka consumer: commit: \(KafkaError.describe(err))")
                }
            }
            if paused {
                if deliver(batchSize: batchSize, offer: offer) {
                    resume(rk)
                } else {
                    warnIfStalled()
                    // Keep serving the group (rebalances, heartbeats, errors) while downstream is full.
                    if let msg = rd_kafka_consumer_poll(rk, min(20, pollTimeoutMs)) { receive(rk, msg) }
                    sample(queue)
                    continue
                }
            }
            // Block only when nothing is waiting to go out; otherwise just drain what is ready.
            if let msg = rd_kafka_consumer_poll(rk, buffer.isEmpty ? pollTimeoutMs : 0) {
                receive(rk, msg)
                if buffer.count >= batchSize, !deliver(batchSize: batchSize, offer: offer) { pause(rk) }
            } else {
                sample(queue)
                if !buffer.isEmpty, !deliver(batchSize: batchSize, offer: offer) { pause(rk) }
            }
        }
        // Anything polled but not accepted is dropped here; it was never acknowledged, so it is not
        // committed and will be read again by whoever consumes the partition next.
        if !buffer.isEmpty {
            buffer.removeAll()
            shared.withLock { $0.stats.held = 0 }
        }
        if paused { resume(rk) }
    }

    private func now() -> Double { Date.timeIntervalSinceReferenceDate }

    private func sample(_ queue: OpaquePointer?) {
        guard let queue else { return }
        let n = Int(rd_kafka_queue_length(queue))
        shared.withLock { $0.stats.prefetched = n }
    }

    /// Offers the buffer in chunks of `batchSize`; returns true when all of it was accepted.
    private func deliver(batchSize: Int, offer: ([Event]) -> Bool) -> Bool {
        while !buffer.isEmpty {
            let chunk = buffer.count <= batchSize ? buffer : Array(buffer.prefix(batchSize))
            guard offer(chunk) else { return false }
            if chunk.count == buffer.count { buffer.removeAll(keepingCapacity: true) } else { buffer.removeFirst(chunk.count) }
            let held = buffer.count
            shared.withLock { $0.stats.delivered += chunk.count; $0.stats.held = held }
        }
        return true
    }

    private func receive(_ rk: OpaquePointer, _ msg: UnsafeMutablePointer<rd_kafka_message_t>) {
        defer { rd_kafka_message_destroy(msg) }
        let m = msg.pointee
        if m.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return }
            let text = rd_kafka_message_errstr(msg).map { String(cString: $0) } ?? ""
            log("warning", "kafka consumer: \(KafkaError.describe(m.err)): \(text)")
            return
        }
        guard let rkt = m.rkt else { return }
        let topic: String
        if let name = topicNames[rkt] { topic = name } else {
            topic = String(cString: rd_kafka_topic_name(rkt))
            topicNames[rkt] = topic
        }
        var tsType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(msg, &tsType)
        var headers: [EventMeta.Header] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var i = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                let v: [UInt8] = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                headers.append(EventMeta.Header(name: name.map { String(cString: $0) } ?? "", value: v))
                i += 1
            }
        }
        let meta = EventMeta(key: m.key.map { bytes($0, m.key_len) }, timestamp: ts >= 0 ? ts : nil, headers: headers,
                             topic: topic, partition: m.partition, offset: m.offset)
        buffer.append(Event(bytes: bytes(m.payload, m.len), meta: meta, position: m.offset))
        let key = TopicPartition(topic: topic, partition: m.partition)
        let held = buffer.count
        let reset: Bool = shared.withLock { s in
            s.stats.received += 1
            s.stats.held = held
            if s.trackers[key, default: OffsetTracker()].delivered(m.offset) { return false }
            var fresh = OffsetTracker()
            _ = fresh.delivered(m.offset)
            s.trackers[key] = fresh
            s.dirty.remove(key)
            return true
        }
        if reset { log("info", "kafka consumer: \(key) went back to offset \(m.offset); tracking restarts there") }
        // A partition that was (re)assigned while paused may still deliver: pause it too.
        if paused { pausePartition(rk, key) }
    }

    // MARK: pause / resume

    private func pause(_ rk: OpaquePointer) {
        paused = true
        pausedSince = now()
        lastStallWarning = pausedSince
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        if rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            rd_kafka_pause_partitions(rk, list)
            rd_kafka_topic_partition_list_destroy(list)
        }
        shared.withLock { $0.stats.paused = true; $0.stats.pauses += 1 }
        log("debug", "kafka consumer: downstream full, partitions paused")
    }

    private func pausePartition(_ rk: OpaquePointer, _ key: TopicPartition) {
        let list = rd_kafka_topic_partition_list_new(1)!
        rd_kafka_topic_partition_list_add(list, key.topic, key.partition)
        rd_kafka_pause_partitions(rk, list)
        rd_kafka_topic_partition_list_destroy(list)
    }

    private func resume(_ rk: OpaquePointer) {
        paused = false
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        if rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            rd_kafka_resume_partitions(rk, list)
            rd_kafka_topic_partition_list_destroy(list)
        }
        shared.withLock { $0.stats.paused = false }
        log("debug", "kafka consumer: partitions resumed")
    }

    private func warnIfStalled() {
        let t = now()
        if t - lastStallWarning >= stallWarning {
            lastStallWarning = t
            log("warning", "kafka consumer: downstream has been full for \(Int(t - pausedSince)) s; partitions stay paused")
        }
    }

    // MARK: acknowledgement and commits

    func acknowledge(_ positions: some Sequence<(topic: String, partition: Int32, offset: Int64)>) {
        shared.withLock { s in
            var lastKey: TopicPartition?
            for p in positions {
                let key: TopicPartition
                if let k = lastKey, k.partition == p.partition, k.topic == p.topic { key = k }
                else { key = TopicPartition(topic: p.topic, partition: p.partition); lastKey = key }
                if s.trackers[key]?.acknowledge(p.offset) == true { s.dirty.insert(key) }
            }
        }
    }

    /// Stores the committable offset of every partition whose acknowledged prefix moved.
    func storeAcknowledged(_ rk: OpaquePointer, only: Set<TopicPartition>? = nil) {
        let toStore: [(TopicPartition, Int64)] = shared.withLock { s in
            var out: [(TopicPartition, Int64)] = []
            for key in s.dirty where only?.contains(key) ?? true {
                if let c = s.trackers[key]?.committable { out.append((key, c)) }
            }
            for (key, _) in out { s.dirty.remove(key) }
            if only == nil { s.dirty.removeAll() }
            return out
        }
        guard !toStore.isEmpty else { return }
        let list = rd_kafka_topic_partition_list_new(Int32(toStore.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (key, offset) in toStore {
            rd_kafka_topic_partition_list_add(list, key.topic, key.partition).pointee.offset = offset
        }
        let err = rd_kafka_offsets_store(rk, list)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            log("debug", "kafka consumer: storing offsets: \(KafkaError.describe(err))")
        }
    }

    /// Commits the stored offsets and waits for the broker's answer, at most `commitTimeout` seconds
    /// (an unreachable coordinator must not hold up a revoke or a shutdown).
    func commitSync(_ rk: OpaquePointer, reason: String) {
        guard let q = rd_kafka_queue_new(rk) else { return }
        defer { rd_kafka_queue_destroy(q) }
        let err = rd_kafka_commit_queue(rk, nil, q, nil, nil)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            if err != RD_KAFKA_RESP_ERR__NO_OFFSET { log("warning", "kafka consumer: commit on \(reason): \(KafkaError.describe(err))") }
            return
        }
        let deadline = now() + commitTimeout
        while now() < deadline {
            guard let ev = rd_kafka_queue_poll(q, Int32(max(1, (deadline - now()) * 1000))) else { continue }
            defer { rd_kafka_event_destroy(ev) }
            guard rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT else { continue }
            let result = rd_kafka_event_error(ev)
            if result == RD_KAFKA_RESP_ERR_NO_ERROR {
                shared.withLock { $0.stats.commits += 1 }
            } else if result != RD_KAFKA_RESP_ERR__NO_OFFSET {
                shared.withLock { $0.stats.commitFailures += 1 }
                log("warning", "kafka consumer: commit on \(reason): \(KafkaError.describe(result))")
            }
            return
        }
        log("warning", "kafka consumer: commit on \(reason): no answer within \(commitTimeout) s (it may still complete)")
    }

    // MARK: callbacks (driver thread)

    func rebalance(_ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ parts: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        let cooperative = rd_kafka_rebalance_protocol(rk).map { String(cString: $0) } == "COOPERATIVE"
        var keys: Set<TopicPartition> = []
        for i in 0..<Int(parts.pointee.cnt) {
            let p = parts.pointee.elems[i]
            keys.insert(TopicPartition(topic: String(cString: p.topic), partition: p.partition))
        }
        let names = keys.map(\.description).sorted().joined(separator: ", ")
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            log("info", "kafka consumer: assigned \(names.isEmpty ? "nothing" : names)")
            if cooperative {
                if let e = rd_kafka_incremental_assign(rk, parts) {
                    log("error", "kafka consumer: incremental assign: \(String(cString: rd_kafka_error_string(e)))")
                    rd_kafka_error_destroy(e)
                }
            } else {
                let e = rd_kafka_assign(rk, parts)
                if e != RD_KAFKA_RESP_ERR_NO_ERROR { log("error", "kafka consumer: assign: \(KafkaError.describe(e))") }
            }
            shared.withLock { s in
                for k in keys { s.trackers[k] = nil; s.dirty.remove(k) }
                s.stats.rebalances += 1
            }
            if paused, parts.pointee.cnt > 0 { rd_kafka_pause_partitions(rk, parts) }
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            log("info", "kafka consumer: \(lost ? "lost" : "revoked") \(names.isEmpty ? "nothing" : names)")
            if !lost {
                storeAcknowledged(rk)
                // During close() the commit was just made, and consumer_close commits what is stored now.
                if !closing { commitSync(rk, reason: "revoke") }
            }
            if cooperative {
                if let e = rd_kafka_incremental_unassign(rk, parts) {
                    log("error", "kafka consumer: incremental unassign: \(String(cString: rd_kafka_error_string(e)))")
                    rd_kafka_error_destroy(e)
                }
            } else {
                rd_kafka_assign(rk, nil)
            }
            let revokedAll = !cooperative
            shared.withLock { s in
                if revokedAll { s.trackers.removeAll(); s.dirty.removeAll() }
                else { for k in keys { s.trackers[k] = nil; s.dirty.remove(k) } }
                s.stats.rebalances += 1
            }
            // Records of revoked partitions that were not handed out yet go to the new owner instead.
            buffer.removeAll { e in
                guard let m = e.meta, let t = m.topic, let p = m.partition else { return false }
                return revokedAll || keys.contains(TopicPartition(topic: t, partition: p))
            }
            let held = buffer.count
            shared.withLock { $0.stats.held = held }
        default:
            log("error", "kafka consumer: rebalance error: \(KafkaError.describe(err))")
            rd_kafka_assign(rk, nil)
            shared.withLock { s in s.trackers.removeAll(); s.dirty.removeAll() }
        }
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        if rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            let n = Int(list.pointee.cnt)
            var parts = Set<TopicPartition>()
            for i in 0..<n {
                let e = list.pointee.elems[i]
                if let t = e.topic { parts.insert(TopicPartition(topic: String(cString: t), partition: e.partition)) }
            }
            rd_kafka_topic_partition_list_destroy(list)
            shared.withLock { $0.stats.assigned = n; $0.stats.assignment = parts }
        }
    }

    func committed(_ err: rd_kafka_resp_err_t, _ offsets: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        if err == RD_KAFKA_RESP_ERR__NO_OFFSET { return }
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            lastCommitError = RD_KAFKA_RESP_ERR_NO_ERROR
            shared.withLock { $0.stats.commits += 1 }
            if let offsets {
                var parts: [String] = []
                for i in 0..<Int(offsets.pointee.cnt) {
                    let p = offsets.pointee.elems[i]
                    // A negative offset (RD_KAFKA_OFFSET_INVALID) means nothing was committed for it.
                    if p.offset >= 0 { parts.append("\(String(cString: p.topic))[\(p.partition)]@\(p.offset)") }
                }
                if !parts.isEmpty { log("debug", "kafka consumer: committed \(parts.joined(separator: " "))") }
            }
        } else {
            shared.withLock { $0.stats.commitFailures += 1 }
            // The same failure repeats at every auto-commit while a broker is away: say it once per 30 s.
            let t = now()
            if err != lastCommitError || t - lastCommitErrorLogged >= 30 {
                lastCommitError = err
                lastCommitErrorLogged = t
                log("warning", "kafka consumer: commit failed: \(KafkaError.describe(err))")
            }
        }
    }
}

private func core(_ opaque: UnsafeMutableRawPointer?) -> ConsumerCore? {
    opaque.map { Unmanaged<ConsumerCore>.fromOpaque($0).takeUnretainedValue() }
}

private let consumerRebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = { rk, err, parts, opaque in
    guard let rk, let parts, let c = core(opaque) else { return }
    c.rebalance(rk, err, parts)
}

private let consumerErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = { rk, err, reason, opaque in
    guard let c = core(opaque) else { return }
    let code = rd_kafka_resp_err_t(rawValue: err)
    let text = reason.map { String(cString: $0) } ?? ""
    if code == RD_KAFKA_RESP_ERR__FATAL, let rk {
        var buf = [CChar](repeating: 0, count: 512)
        let real = rd_kafka_fatal_error(rk, &buf, buf.count)
        c.log("error", "kafka consumer: fatal error \(KafkaError.describe(real)): \(cString(buf))")
    } else {
        // Transport failures were already logged by librdkafka's own log line.
        let level = code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? "error" : code == RD_KAFKA_RESP_ERR__TRANSPORT ? "debug" : "warning"
        c.log(level, "kafka consumer: \(KafkaError.describe(code)): \(text)")
    }
}

private let consumerCommitCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = { _, err, offsets, opaque in
    core(opaque)?.committed(err, offsets)
}

private let consumerLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = { rk, level, fac, buf in
    guard let rk, let buf, let c = core(rd_kafka_opaque(rk)) else { return }
    let facility = fac.map { String(cString: $0) } ?? ""
    c.log(levelName(level), "kafka consumer: \(facility): \(String(cString: buf))")
}
