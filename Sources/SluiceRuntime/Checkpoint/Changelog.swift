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

    private struct Written: Sendable { var partition: Int32; var digest: UInt64 }
    private struct Change: Sendable { var op: String; var key: StateKey; var partition: Int32; var value: [UInt8]?; var digest: UInt64 }
    private struct State: Sendable {
        /// What the changelog holds, per operator and key (confirmed deliveries only).
        var written: [String: [StateKey: Written]] = [:]
        var pending: [UInt64: [Change]] = [:]
        /// Per partition number: moves on every assignment or revocation of it.
        var generation: [Int32: UInt64] = [:]
        /// Per partition number: how many topic-partitions of that number are assigned.
        var assigned: [Int32: Int] = [:]
        /// Generations of the assigned partitions when each checkpoint started.
        var begun: [UInt64: [Int32: UInt64]] = [:]
        /// Keys of the last snapshots that had no input partition (not written), per operator.
        var unrouted: [String: Int] = [:]
    }
    private let state = Mutex(State())
    /// Held while a checkpoint's records are produced and its offsets acknowledged, and by a rebalance.
    private let publishing = NSLock()

    init(pipeline: String, brokers: String, lanes: [String: Int], log: @escaping @Sendable (String, String) -> Void) throws(KafkaError) {
        self.pipeline = pipeline
        self.brokers = brokers
        self.lanes = lanes
        self.log = log
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
    func begin(_ id: UInt64) {
        state.withLock { s in
            var held: [Int32: UInt64] = [:]
            for (p, n) in s.assigned where n > 0 { held[p] = s.generation[p, default: 0] }
            s.begun[id] = held
        }
    }

    /// A stage worker's snapshot for checkpoint `id` (on the encoder thread): `entries` are every key
    /// it holds, with the key's input partition (nil if unknown) and its per-key snapshot. Records
    /// what changed since the changelog was last written for the keys of this worker.
    func stage(_ id: UInt64, op: String, lane: Int, entries: [(key: StateKey, partition: Int32?, snapshot: [UInt8])]) {
        guard let lanes = lanes[op] else { return }
        state.withLock { s in
            let written = s.written[op] ?? [:]
            var changes: [Change] = []
            var live = Set<StateKey>()
            var unrouted = 0
            for e in entries {
                guard let p = e.partition else { unrouted += 1; continue }
                live.insert(e.key)
                let value = Self.encode(e.snapshot)
                let d = Self.digest(value)
                let old = written[e.key]
                if let old, old.partition == p, old.digest == d { continue }
                if let old, old.partition != p {
                    changes.append(Change(op: op, key: e.key, partition: old.partition, value: nil, digest: 0))
                }
                changes.append(Change(op: op, key: e.key, partition: p, value: value, digest: d))
            }
            for (key, w) in written where key.lane(of: lanes) == lane && !live.contains(key) {
                changes.append(Change(op: op, key: key, partition: w.partition, value: nil, digest: 0))
            }
            s.pending[id, default: []].append(contentsOf: changes)
            s.unrouted[op] = unrouted
        }
    }

    /// Checkpoint `id` is complete and durable: produces its records for the partitions held
    /// throughout it, waits for their delivery, then calls `commit` with the partitions whose
    /// offsets must not be acknowledged (not held throughout). Returns false (and does not call
    /// `commit`) if a record could not be written.
    @discardableResult
    func publish(_ id: UInt64, timeout: Double = 30, commit: (_ excluded: Set<Int32>) -> Void) -> Bool {
        publishing.lock(); defer { publishing.unlock() }
        let (changes, stable, excluded, unrouted) = state.withLock { s -> ([Change], Set<Int32>, Set<Int32>, [String: Int]) in
            let changes = s.pending.removeValue(forKey: id) ?? []
            for old in s.pending.keys where old < id { s.pending[old] = nil }
            let begun = s.begun.removeValue(forKey: id) ?? [:]
            for old in s.begun.keys where old < id { s.begun[old] = nil }
            let stable = Set(begun.filter { s.assigned[$0.key, default: 0] > 0 && s.generation[$0.key, default: 0] == $0.value }.keys)
            let all = Set(s.assigned.keys).union(begun.keys).union(s.generation.keys)
            return (changes, stable, all.subtracting(stable), s.unrouted)
        }
        let writing = changes.filter { stable.contains($0.partition) }
        let failures = Mutex<[String]>([])
        var byTopic: [String: [Change]] = [:]
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
        state.withLock { s in
            for c in writing {
                if let v = c.value, !v.isEmpty { s.written[c.op, default: [:]][c.key] = Written(partition: c.partition, digest: c.digest) }
                else if s.written[c.op]?[c.key]?.partition == c.partition { s.written[c.op]?[c.key] = nil }
            }
        }
        let skipped = changes.count - writing.count
        if !changes.isEmpty { log("debug", "changelog of checkpoint \(id): \(writing.count) record(s) written"
            + (skipped > 0 ? ", \(skipped) of partitions not held throughout it skipped" : "")
            + (unrouted.values.reduce(0, +) > 0 ? "; keys without an input partition (not in the changelog): \(unrouted)" : "")) }
        commit(excluded)
        return true
    }

    // MARK: rebalances (the consumer's rebalance callback)

    /// Partitions are revoked: the numbers no longer held at all are returned (their keys are to be
    /// dropped); what the changelog holds for them is forgotten here (the next owner writes them).
    func revoked(_ parts: [TopicPartition]) -> Set<Int32> {
        publishing.lock(); defer { publishing.unlock() }
        return state.withLock { s in
            var gone = Set<Int32>()
            for tp in parts {
                s.generation[tp.partition, default: 0] += 1
                let n = max(0, s.assigned[tp.partition, default: 0] - 1)
                s.assigned[tp.partition] = n
                if n == 0 { gone.insert(tp.partition) }
            }
            for op in s.written.keys { s.written[op] = s.written[op]?.filter { !gone.contains($0.value.partition) } }
            return gone
        }
    }

    /// Partitions are assigned: returns the numbers newly held (to restore), and moves their generation.
    func assigning(_ parts: [TopicPartition]) -> Set<Int32> {
        publishing.lock(); defer { publishing.unlock() }
        return state.withLock { s in
            var fresh = Set<Int32>()
            for tp in parts {
                s.generation[tp.partition, default: 0] += 1
                if s.assigned[tp.partition, default: 0] == 0 { fresh.insert(tp.partition) }
                s.assigned[tp.partition, default: 0] += 1
            }
            return fresh
        }
    }

    /// The restored keys of `op` are what the changelog holds; the partitions' generation moves
    /// again (the restore is in the stage inboxes now: a checkpoint started before this is not
    /// complete for them).
    func restored(op: String, _ entries: [ChangelogEntry], partitions: Set<Int32>) {
        state.withLock { s in
            for e in entries {
                if let v = e.value { s.written[op, default: [:]][e.key] = Written(partition: e.partition, digest: Self.digest(v)) }
            }
            for p in partitions { s.generation[p, default: 0] += 1 }
        }
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
