/// A rendered key of a stateful transform, hashed once (FNV-1a, stable across runs) so routing
/// and state lookups never hash the bytes again.
struct StateKey: Hashable, Sendable {
    let bytes: [UInt8]
    let hash: UInt64

    init(_ bytes: [UInt8]) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        self.bytes = bytes
        self.hash = h
    }

    /// The worker of a stage with `lanes` workers that owns this key.
    func lane(of lanes: Int) -> Int { lanes <= 1 ? 0 : Int((hash >> 17) % UInt64(lanes)) }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    /// The FNV hash, mixed with the table's seed: no SipHash pass per lookup (the key was hashed once).
    func _rawHashValue(seed: Int) -> Int {
        var h = hash ^ UInt64(bitPattern: Int64(seed))
        h = (h ^ (h >> 33)) &* 0xff51_afd7_ed55_8ccd
        h = (h ^ (h >> 33)) &* 0xc4ce_b9fe_1a85_ec53
        return Int(bitPattern: UInt(truncatingIfNeeded: h ^ (h >> 33)))
    }
    static func == (a: StateKey, b: StateKey) -> Bool { a.hash == b.hash && a.bytes == b.bytes }

    var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// An event on its way into a stateful transform: its JSON bytes, key, event time and which input
/// of the transform it is for (0 = left / only, 1 = right).
struct KeyedEvent: Sendable {
    var key: StateKey
    var time: Int64
    var input: Int
    var bytes: [UInt8]
    var meta: EventMeta?
    /// Where it came from (for dead letters).
    var source: Int
    var position: Int64
    /// Pre-aggregated in the upstream stage: the reducers of an aggregate over this key's
    /// events of one batch and one window (then `bytes` is empty).
    var partial: PartialAggregate? = nil
}

/// The local half of a local/global aggregate: declarative reducers folded over the events of one
/// key and window within one upstream batch, so a hot key crosses the exchange once per batch.
struct PartialAggregate: Sendable {
    var start: Int64
    var end: Int64
    var acc: [Reducers.Accumulator]
    /// Events folded in, and the bytes the accumulators hold.
    var events: Int
    var bytes: Int
}

/// What crosses an exchange: the events of one upstream batch for one worker of a keyed stage,
/// and the watermark of the channel they came through (after them).
struct KeyedBatch: Sendable {
    var channel: Channel
    var events: [KeyedEvent]
    var watermark: Int64
    /// A checkpoint barrier (its id) travelling in order with the data; 0 = none.
    var barrier: UInt64 = 0
    /// A rebalance's instruction about whole partitions' state (then there are no events).
    var control: StateControl? = nil
}

import SluiceCore
