import Foundation
import Synchronization
import SluiceCore
import SluiceKafka

/// The changelog topics of a Kafka-fed pipeline's stateful operators (`PIPELINE-OPERATOR-changelog`,
/// compacted): each key's state as of the last complete checkpoint, in the partition number of the
/// input partition its events came from, so a replica that is assigned partition p can load the
/// keys of p before it processes p.
///
/// **Written once per complete checkpoint, before its offsets are committed.** Each stage worker's
/// snapshot for checkpoint N is compared on the encoder thread with what the changelog holds
/// (`stage`): changed keys become records, keys gone become tombstones (pending for N). When N is
/// complete, `publish` produces them (acks=all, idempotent), waits until every one is delivered,
/// and only then lets the checkpoint's offsets be acknowledged to the consumer (so a committed
/// offset is never past the changelog). Nothing is committed if a record fails.
///
/// **Ownership.** A partition's records are written (and its offsets committed) for checkpoint N
/// only if this replica held the partition throughout N (its generation did not move between the
/// checkpoint's start and its publication): a partition revoked or reassigned meanwhile is skipped,
/// so a replica never overwrites a newer owner's state. `revoked` and `assigned` (the consumer's
/// rebalance callback) wait for a publication in progress.
final class Changelog: Sendable {
    /// Format of a record's value: this byte, then the operator's per-key snapshot.
    static let formatVersion: UInt8 = 1

    let pipeline: String
    let brokers: String
    /// Operator name -> its worker count, for the operators that keep a changelog.
    let lanes: [String: Int]
    private let producer: KafkaProducerClient
    private let log: @Sendable (String, String) -> Void

    private let state: Mutex<ChangelogLedger>
    /// Held while a checkpoint's records are produced and its offsets acknowledged, and by a rebalance.
    private let publishing = NSLock()

    init(pipeline: String, brokers: String, lanes: [String: Int], log: @escaping @Sendable (String, String) -> Void) throws(KafkaError) {
        self.pipeline = pipeline
        self.brokers = brokers
        self.lanes = lanes
        self.log = log
        state = Mutex(ChangelogLedger(lanes: lanes))
        producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: brokers, options: ["linger.ms": "5"])) { level, message in
            log(level, "changelog: \(message)")
        }
    }

    static func topic(pipeline: String, operator op: String) -> String { "\(pipeline)-\(op)-changelog" }
    func topic(of op: String) -> String { Self.topic(pipeline: pipeline, operator: op) }

    static func digest(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    /// A record's value: the format byte and the key's snapshot.
    static func encode(_ snapshot: [UInt8]) -> [UInt8] { [formatVersion] + snapshot }

    /// The key's snapshot in a record's value, or nil when the value is not of this format.
    static func decode(_ value: [UInt8]) -> [UInt8]? {
        guard value.first == formatVersion else { return nil }
        return Array(value.dropFirst())
    }

    // MARK: checkpoints

    /// Checkpoint `id` starts: remembers which partitions are held, and since when.
    func begin(_ id: UInt64) { state.withLock { $0.begin(id) } }

    /// A stage worker's snapshot for checkpoint `id` (on the encoder thread): see `ChangelogLedger.stage`.
    func stage(_ id: UInt64, op: String, lane: Int, entries: [(key: StateKey, partition: Int32?, snapshot: [UInt8])]) {
        state.withLock { $0.stage(id, op: op, lane: lane, entries: entries) }
    }

    /// Checkpoint `id` is complete and durable: produces its records for the partitions held
    /// throughout it, waits for their delivery, then calls `commit` with the partitions whose
    /// offsets must not be acknowledged (not held throughout). Returns false (and does not call
    /// `commit`) if a record could not be written.
    @discardableResult
    func publish(_ id: UInt64, timeout: Double = 30, commit: (_ excluded: Set<Int32>) -> Void) -> Bool {
        publishing.lock(); defer { publishing.unlock() }
        let (changes, writing, excluded, unrouted) = state.withLock { s in
            let t = s.take(id)
            return (t.changes, t.writing, t.excluded, s.unrouted)
        }
        let failures = Mutex<[String]>([])
        var byTopic: [String: [ChangelogLedger.Change]] = [:]
        for c in writing { byTopic[topic(of: c.op), default: []].append(c) }
        for (topic, records) in byTopic {
            var messages = records.map { KafkaMessage(value: $0.value ?? [], key: $0.key.bytes, partition: $0.partition) }
            for i in records.indices where records[i].value == nil { messages[i].tombstone = true }
            producer.produce(messages, topic: topic) { _, result in
                if case .failure(let e) = result { failures.withLock { $0.append("\(e)") } }
            }
        }
        if !producer.flush(timeout: timeout) { failures.withLock { $0.append("not delivered within \(timeout) s") } }
        let failed = failures.withLock { $0 }
        guard failed.isEmpty else {
            log("error", "changelog of checkpoint \(id): \(failed.count) record(s) not written (\(failed[0])); its offsets are not committed")
            return false
        }
        state.withLock { $0.confirm(writing) }
        let skipped = changes.count - writing.count
        if !changes.isEmpty { log("debug", "changelog of checkpoint \(id): \(writing.count) record(s) written"
            + (skipped > 0 ? ", \(skipped) of partitions not held throughout it skipped" : "")
            + (unrouted.values.reduce(0, +) > 0 ? "; keys without an input partition (not in the changelog): \(unrouted)" : "")) }
        commit(excluded)
        return true
    }

    // MARK: rebalances (the consumer's rebalance callback)

    /// Partitions are revoked (waits for a publication in progress): the numbers no longer held at
    /// all are returned (their keys are to be dropped); see `ChangelogLedger.revoked`.
    func revoked(_ parts: [TopicPartition]) -> Set<Int32> {
        publishing.lock(); defer { publishing.unlock() }
        return state.withLock { $0.revoked(parts.map(\.partition)) }
    }

    /// Partitions are assigned (waits for a publication in progress): returns the numbers newly held (to restore).
    func assigning(_ parts: [TopicPartition]) -> Set<Int32> {
        publishing.lock(); defer { publishing.unlock() }
        return state.withLock { $0.assigning(parts.map(\.partition)) }
    }

    /// The restored keys of `op` are what the changelog holds (see `ChangelogLedger.restored`).
    func restored(op: String, _ entries: [ChangelogEntry], partitions: Set<Int32>) {
        state.withLock { $0.restored(op: op, entries, partitions: partitions) }
    }

    /// Reads partitions `partitions` of `op`'s changelog to their end: the last record of each key
    /// (keys whose last record is a tombstone, or of another format, are left out).
    func read(op: String, partitions: Set<Int32>, timeout: Double = 60) throws(KafkaError) -> [ChangelogEntry] {
        let records = try KafkaPartitionReader.readToEnd(brokers: brokers, topic: topic(of: op), partitions: partitions.sorted(), timeout: timeout)
        var last: [StateKey: ChangelogEntry] = [:]
        var order: [StateKey] = []
        for r in records {
            let key = StateKey(r.key)
            if last[key] == nil { order.append(key) }
            last[key] = ChangelogEntry(partition: r.partition, key: key, value: r.value)
        }
        return order.compactMap { k in last[k].flatMap { $0.value == nil ? nil : $0 } }
    }

    /// Flushes and closes the producer.
    func close() { producer.close(timeout: 10) }
}
