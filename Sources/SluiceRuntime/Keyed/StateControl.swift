/// An instruction to a keyed stage worker about the state of whole input partitions, travelling
/// in its inbox (so it is applied in order with the data): a rebalance moved partitions.
enum StateControl: Sendable {
    /// Partitions revoked: drop every key whose events came from them.
    case drop(partitions: Set<Int32>)
    /// Partitions assigned: drop what is held for them (events of an earlier ownership), then load
    /// these keys' state read from the changelog (each record's value as `snapshotEachKey` wrote it).
    case restore(partitions: Set<Int32>, entries: [ChangelogEntry])
}

/// One key's state as read from (or written to) a changelog topic: the input partition its
/// events come from, the key, and its per-key snapshot (nil: a tombstone, the key is gone).
struct ChangelogEntry: Sendable, Equatable {
    var partition: Int32
    var key: StateKey
    var value: [UInt8]?

    static func == (a: ChangelogEntry, b: ChangelogEntry) -> Bool {
        a.partition == b.partition && a.key == b.key && a.value == b.value
    }
}
