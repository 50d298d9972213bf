import CRdKafka
import Foundation
import Synchronization
import SluiceCore

/// State shared by the poll thread, librdkafka callbacks and acknowledging threads.
///
/// `shared` is a Mutex (acks arrive from any thread). The other mutable fields (`buffers`, `origins`,
/// `pausedRoutes`, the slot and topic caches, timers) are used only by the thread that currently drives the handle: the one inside
/// `KafkaConsumerClient.run` or `.close` (serialized by its `driver` lock); the rebalance/error/commit
/// callbacks run on that same thread, from inside `rd_kafka_consumer_poll` / `rd_kafka_consumer_close`.
/// The log callback only reads the immutable `log`.
final class ConsumerCore: @unchecked Sendable {
    struct Shared {
        var trackers: [TopicPartition: OffsetTracker] = [:]
        /// The generation of the last tracker created (`OffsetTracker.generation`).
        var generations: UInt64 = 0
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
    /// Records polled but not yet accepted, per route (one route per source of a shared consumer).
    var buffers: [[Event]] = [[]]
    /// The partition slot and offset of each record in `buffers` (same shape).
    var origins: [[Origin]] = [[]]
    /// Partitions seen, by slot (`Origin.slot`); a slot is never reused.
    var slotPartitions: [TopicPartition] = []
    var slotOf: [SlotKey: Int32] = [:]
    var lastSlot: (key: SlotKey, slot: Int32)?
    /// Per topic handle: its name and route (cached, so a record costs no string hashing).
    var topics: [OpaquePointer: (name: String, route: Int?)] = [:]
    var lastTopic: (rkt: OpaquePointer, name: String, route: Int?)?
    /// Scratch for `register`: the span index of each slot in the chunk being registered (-1: none).
    var spanOfSlot: [Int] = []
    /// True when batches are acknowledged as a whole (`KafkaBatchReceipt`): one tracker entry per
    /// partition and batch; false: one per record (`acknowledge(_ positions:)`).
    var batchAcks = false
    /// Records received since the stats were last updated (they are updated per batch, not per record).
    var unreportedReceived = 0
    /// Routes whose partitions are paused because their `offer` refused a batch.
    var pausedRoutes: Set<Int> = []
    /// The route of a topic's records (nil: the topic belongs to no route; its records are skipped).
    var routeOf: (String) -> Int? = { _ in 0 }
    var pausedSince = 0.0
    var lastStallWarning = 0.0
    var lastCommit = 0.0
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
    /// Called in the rebalance callback after partitions are assigned, before any of their records is
    /// polled; and on revoke, before the revoke's commit.
    var onAssigned: (@Sendable ([TopicPartition]) -> Void)?
    var onRevoked: (@Sendable ([TopicPartition], _ lost: Bool) -> Void)?

    init(log: @escaping KafkaLog, autoCommit: Bool, commitInterval: Double, stallWarning: Double, commitTimeout: Double) {
        self.log = log; self.autoCommit = autoCommit; self.commitInterval = commitInterval; self.stallWarning = stallWarning
        self.commitTimeout = commitTimeout
    }

    // MARK: poll loop (driver thread)

    func runLoop(rk: OpaquePointer, queue: OpaquePointer?, batchSize: Int, pollTimeoutMs: Int32,
                 stop: () -> Bool, offers: [([Event], KafkaBatchReceipt) -> Bool]) {
        lastCommit = now()
        buffers = Array(repeating: [], count: max(1, offers.count))
        origins = buffers.map { _ in [] }
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
            // A paused route is offered its held batch again; accepted, its partitions resume.
            for r in pausedRoutes.sorted() {
                if deliver(r, batchSize: batchSize, offer: offers[r]) { resume(rk, route: r) }
            }
            if !pausedRoutes.isEmpty { warnIfStalled() }
            let ready = buffers.indices.contains { !buffers[$0].isEmpty && !pausedRoutes.contains($0) }
            // Block only when nothing is waiting to go out; while a route is paused, come back soon to retry it.
            let timeout = ready ? 0 : pausedRoutes.isEmpty ? pollTimeoutMs : min(20, pollTimeoutMs)
            guard var msg = rd_kafka_consumer_poll(rk, timeout) else {
                idle(rk, queue, batchSize: batchSize, offers: offers)
                continue
            }
            // Take what is ready, up to a batch, before the housekeeping above runs again.
            var taken = 0
            while true {
                if let r = receive(rk, msg), !pausedRoutes.contains(r), buffers[r].count >= batchSize,
                   !deliver(r, batchSize: batchSize, offer: offers[r]) { pause(rk, route: r) }
                taken += 1
                guard taken < batchSize else { break }
                guard let next = rd_kafka_consumer_poll(rk, 0) else {
                    idle(rk, queue, batchSize: batchSize, offers: offers)
                    break
                }
                msg = next
            }
        }
        // Anything polled but not accepted is dropped here; it was never acknowledged, so it is not
        // committed and will be read again by whoever consumes the partition next.
        if heldCount > 0 {
            for r in buffers.indices { buffers[r].removeAll(); origins[r].removeAll() }
        }
        reportStats()
        for r in pausedRoutes.sorted() { resume(rk, route: r) }
    }

    /// Nothing more is ready in librdkafka: hands out what is held (low latency) and samples the queue.
    private func idle(_ rk: OpaquePointer, _ queue: OpaquePointer?, batchSize: Int, offers: [([Event], KafkaBatchReceipt) -> Bool]) {
        sample(queue)
        reportStats()
        for r in buffers.indices where !buffers[r].isEmpty && !pausedRoutes.contains(r) {
            if !deliver(r, batchSize: batchSize, offer: offers[r]) { pause(rk, route: r) }
        }
    }

    /// Records polled and not yet accepted, over every route.
    var heldCount: Int { buffers.reduce(0) { $0 + $1.count } }

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

    // MARK: pause / resume

    /// The assigned partitions of route `r`'s topics.
    private func assignedPartitions(_ rk: OpaquePointer, route r: Int) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t>? {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return nil }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let mine = rd_kafka_topic_partition_list_new(max(1, list.pointee.cnt))!
        for i in 0..<Int(list.pointee.cnt) {
            let e = list.pointee.elems[i]
            if let t = e.topic, routeOf(String(cString: t)) == r { rd_kafka_topic_partition_list_add(mine, t, e.partition) }
        }
        return mine
    }

    /// Pauses the partitions of route `r` only (the other routes' sources go on).
    private func pause(_ rk: OpaquePointer, route r: Int) {
        if pausedRoutes.isEmpty { pausedSince = now(); lastStallWarning = pausedSince }
        pausedRoutes.insert(r)
        if let list = assignedPartitions(rk, route: r) {
            rd_kafka_pause_partitions(rk, list)
            rd_kafka_topic_partition_list_destroy(list)
        }
        shared.withLock { $0.stats.paused = true; $0.stats.pauses += 1 }
        log("debug", "kafka consumer: downstream full, partitions\(buffers.count > 1 ? " of source \(r)" : "") paused")
    }

    func pausePartition(_ rk: OpaquePointer, _ key: TopicPartition) {
        let list = rd_kafka_topic_partition_list_new(1)!
        rd_kafka_topic_partition_list_add(list, key.topic, key.partition)
        rd_kafka_pause_partitions(rk, list)
        rd_kafka_topic_partition_list_destroy(list)
    }

    private func resume(_ rk: OpaquePointer, route r: Int) {
        pausedRoutes.remove(r)
        if let list = assignedPartitions(rk, route: r) {
            rd_kafka_resume_partitions(rk, list)
            rd_kafka_topic_partition_list_destroy(list)
        }
        let still = !pausedRoutes.isEmpty
        shared.withLock { $0.stats.paused = still }
        log("debug", "kafka consumer: partitions\(buffers.count > 1 ? " of source \(r)" : "") resumed")
    }

    private func warnIfStalled() {
        let t = now()
        if t - lastStallWarning >= stallWarning {
            lastStallWarning = t
            log("warning", "kafka consumer: downstream has been full for \(Int(t - pausedSince)) s; partitions stay paused")
        }
    }

    // MARK: acknowledgement and commits

    /// Acknowledges a whole batch handed out with a receipt.
    func acknowledge(_ receipt: KafkaBatchReceipt) {
        shared.withLock { s in
            for span in receipt.spans where s.trackers[span.partition]?.generation == span.generation
                && s.trackers[span.partition]?.acknowledge(span.last) == true {
                s.dirty.insert(span.partition)
            }
        }
    }

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
