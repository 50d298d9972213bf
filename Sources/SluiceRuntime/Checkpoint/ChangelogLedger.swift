/// The bookkeeping of `Changelog`, without I/O: what the changelog topics hold per key, the
/// records each checkpoint has to write, and which partitions this replica held throughout a
/// checkpoint (only those are written and committed).
struct ChangelogLedger: Sendable {
    /// One record to write: `value` nil is a tombstone.
    struct Change: Sendable, Equatable {
        var op: String
        var key: StateKey
        var partition: Int32
        var value: [UInt8]?
        var digest: UInt64
    }
    private struct Written: Sendable { var partition: Int32; var digest: UInt64 }

    /// Operator name -> its worker count.
    let lanes: [String: Int]
    /// What the changelog holds, per operator and key (confirmed deliveries and restores only).
    private var written: [String: [StateKey: Written]] = [:]
    private var pending: [UInt64: [Change]] = [:]
    /// Per partition number: moves on every assignment or revocation of it.
    private var generation: [Int32: UInt64] = [:]
    /// Per partition number: how many topic-partitions of that number are assigned.
    private var assigned: [Int32: Int] = [:]
    /// Generations of the assigned partitions when each checkpoint started.
    private var begun: [UInt64: [Int32: UInt64]] = [:]
    /// Keys of the last snapshot of each operator that had no input partition (not written).
    private(set) var unrouted: [String: Int] = [:]

    init(lanes: [String: Int]) { self.lanes = lanes }

    /// Checkpoint `id` starts: the partitions held now, with their generation.
    mutating func begin(_ id: UInt64) {
        var held: [Int32: UInt64] = [:]
        for (p, n) in assigned where n > 0 { held[p] = generation[p, default: 0] }
        begun[id] = held
    }

    /// Worker `lane` of `op` snapshotted for checkpoint `id`: `entries` are every key it holds, with
    /// the key's input partition (nil if unknown: not written) and its per-key snapshot. Changed or
    /// new keys become records in their partition (plus a tombstone in the old one if the key moved),
    /// keys of this worker that the changelog holds but the snapshot does not become tombstones.
    mutating func stage(_ id: UInt64, op: String, lane: Int, entries: [(key: StateKey, partition: Int32?, snapshot: [UInt8])]) {
        guard let lanes = lanes[op] else { return }
        let held = written[op] ?? [:]
        var changes: [Change] = []
        var live = Set<StateKey>()
        var none = 0
        for e in entries {
            guard let p = e.partition else { none += 1; continue }
            live.insert(e.key)
            let value = Changelog.encode(e.snapshot)
            let d = Changelog.digest(value)
            let old = held[e.key]
            if let old, old.partition == p, old.digest == d { continue }
            if let old, old.partition != p { changes.append(Change(op: op, key: e.key, partition: old.partition, value: nil, digest: 0)) }
            changes.append(Change(op: op, key: e.key, partition: p, value: value, digest: d))
        }
        for (key, w) in held where key.lane(of: lanes) == lane && !live.contains(key) {
            changes.append(Change(op: op, key: key, partition: w.partition, value: nil, digest: 0))
        }
        pending[id, default: []].append(contentsOf: changes)
        unrouted[op] = none
    }

    /// Checkpoint `id` is complete: its records (`changes`), those of partitions held throughout it
    /// (`writing`), and the partition numbers whose offsets must not be acknowledged (`excluded`).
    /// Forgets `id` and every older checkpoint.
    mutating func take(_ id: UInt64) -> (changes: [Change], writing: [Change], excluded: Set<Int32>) {
        let changes = pending.removeValue(forKey: id) ?? []
        for old in pending.keys where old < id { pending[old] = nil }
        let held = begun.removeValue(forKey: id) ?? [:]
        for old in begun.keys where old < id { begun[old] = nil }
        let stable = Set(held.filter { assigned[$0.key, default: 0] > 0 && generation[$0.key, default: 0] == $0.value }.keys)
        let all = Set(assigned.keys).union(held.keys).union(generation.keys)
        return (changes, changes.filter { stable.contains($0.partition) }, all.subtracting(stable))
    }

    /// The records were delivered: the changelog holds them now.
    mutating func confirm(_ delivered: [Change]) {
        for c in delivered {
            if c.value != nil { written[c.op, default: [:]][c.key] = Written(partition: c.partition, digest: c.digest) }
            else if written[c.op]?[c.key]?.partition == c.partition { written[c.op]?[c.key] = nil }
        }
    }

    /// Topic-partitions of these numbers were revoked: returns the numbers no longer held at all, and
    /// forgets what the changelog holds for them (the next owner writes them).
    mutating func revoked(_ partitions: [Int32]) -> Set<Int32> {
        var gone = Set<Int32>()
        for p in partitions {
            generation[p, default: 0] += 1
            let n = max(0, assigned[p, default: 0] - 1)
            assigned[p] = n
            if n == 0 { gone.insert(p) }
        }
        for op in written.keys { written[op] = written[op]?.filter { !gone.contains($0.value.partition) } }
        return gone
    }

    /// Topic-partitions of these numbers were assigned: returns the numbers newly held (to restore).
    mutating func assigning(_ partitions: [Int32]) -> Set<Int32> {
        var fresh = Set<Int32>()
        for p in partitions {
            generation[p, default: 0] += 1
            if assigned[p, default: 0] == 0 { fresh.insert(p) }
            assigned[p, default: 0] += 1
        }
        return fresh
    }

    /// The restored keys of `op` are what the changelog holds; the partitions' generation moves again
    /// (the restore is in the stage inboxes only now: a checkpoint started before is not complete for them).
    mutating func restored(op: String, _ entries: [ChangelogEntry], partitions: Set<Int32>) {
        for e in entries {
            if let v = e.value { written[op, default: [:]][e.key] = Written(partition: e.partition, digest: Changelog.digest(v)) }
        }
        for p in partitions { generation[p, default: 0] += 1 }
    }
}
