import CRdKafka
import Foundation
import Synchronization
import SluiceCore

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
    var buffer: [Event] = []
    var paused = false
    var pausedSince = 0.0
    var lastStallWarning = 0.0
    var lastCommit = 0.0
    var topicNames: [OpaquePointer: String] = [:]
    /// Set by close() before rd_kafka_consumer_close (driver thread).
    var closing = false
    /// The group's rebalance protocol, read when partitions are assigned. librdkafka 2.0.2's
    /// `rd_kafka_rebalance_protocol` and `rd_kafka_assignment` wait on the group thread and can hang when
    /// called from the revoke that `rd_kafka_consumer_close` triggers (librdkafka #4041), so the revoke
    /// during close uses this instead of asking.
    var cooperative = false
    var lastCommitError = RD_KAFKA_RESP_ERR_NO_ERROR
    var lastLagSample = 0.0
    var lastCommitErrorLogged = 0.0
    /// Offsets to start from when a partition is assigned (a restored checkpoint); used once per partition.
    var startOffsets: [TopicPartition: Int64] = [:]
    /// Start from the first offset at or after this time (ms) on assignment (`rewind --to TIME`).
    var startTime: Int64?

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
            if now() - lastLagSample >= 1 { sampleLag(rk) }
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

    func now() -> Double { Date.timeIntervalSinceReferenceDate }

    private func sample(_ queue: OpaquePointer?) {
        guard let queue else { return }
        let n = Int(rd_kafka_queue_length(queue))
        shared.withLock { $0.stats.prefetched = n }
    }

    /// Fills `stats.lag` from librdkafka's cached high watermarks and fetch positions (no broker round trip).
    private func sampleLag(_ rk: OpaquePointer) {
        lastLagSample = now()
        let (parts, committed) = shared.withLock { s in
            (s.stats.assignment.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) },
             s.trackers.compactMapValues { $0.committable })
        }
        var lags: [PartitionLag] = []
        let list = rd_kafka_topic_partition_list_new(Int32(max(1, parts.count)))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for p in parts { rd_kafka_topic_partition_list_add(list, p.topic, p.partition) }
        let positioned = rd_kafka_position(rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR
        for (i, p) in parts.enumerated() {
            var low: Int64 = -1, high: Int64 = -1
            let known = rd_kafka_get_watermark_offsets(rk, p.topic, p.partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0
            let position = positioned ? list.pointee.elems[i].offset : -1
            var lag = PartitionLag(topic: p.topic, partition: p.partition, high: known ? high : nil,
                                   committed: committed[p], position: position >= 0 ? position : nil)
            if let high = lag.high, let at = lag.committed ?? lag.position { lag.lag = max(0, high - at) }
            lags.append(lag)
        }
        shared.withLock { $0.stats.lag = lags }
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

    /// Acknowledges, per partition, every delivered record below the given next offset.
    func acknowledge(below positions: [TopicPartition: Int64]) {
        shared.withLock { s in
            for (key, next) in positions where s.trackers[key]?.acknowledge(below: next) == true { s.dirty.insert(key) }
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
}
