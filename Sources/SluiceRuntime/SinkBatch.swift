import SluiceCore

/// Encoded events bound for one sink: payloads back to back, each followed by a newline,
/// plus the acknowledgements to release once the sink has written them.
struct SinkBatch: Sendable {
    var data: [UInt8] = []
    /// End offset (exclusive, after the newline) of each event in `data`.
    var ends: [Int] = []
    /// Metadata per event, only filled once some event has any (Kafka keys, headers, timestamps).
    var metas: [EventMeta?] = []
    /// Batches (of the source) whose delivery waits for this sink batch.
    var acks: [Acknowledgement] = []
    /// Bit i set: event i was written by an encoder that never repeats a key in an object (the Lua
    /// encoder, from a table), so a key template may stop at the first match.
    private var distinct: [UInt64] = []

    var count: Int { ends.count }
    var isEmpty: Bool { ends.isEmpty }

    /// `distinctKeys`: the payload repeats no key in any object (see `distinct`).
    mutating func append<C: Collection>(_ payload: C, meta: EventMeta? = nil, distinctKeys: Bool = false) where C.Element == UInt8 {
        data.append(contentsOf: payload)
        endWritten(meta: meta, distinctKeys: distinctKeys)
    }

    /// Appends an event that `write` writes straight into `data` (an encoder appending its output);
    /// when `write` returns false (the encoding failed) the batch is left as it was.
    mutating func appendWritten(meta: EventMeta?, distinctKeys: Bool = false, _ write: (inout [UInt8]) -> Bool) -> Bool {
        let start = data.count
        guard write(&data) else {
            data.removeSubrange(start...)
            return false
        }
        endWritten(meta: meta, distinctKeys: distinctKeys)
        return true
    }

    /// Ends the event whose payload was just appended to `data` (the bytes since the last event).
    mutating func endWritten(meta: EventMeta?, distinctKeys: Bool = false) {
        if meta != nil || !metas.isEmpty {
            while metas.count < ends.count { metas.append(nil) }
            metas.append(meta)
        }
        if distinctKeys { mark(ends.count) }
        data.append(0x0A)
        ends.append(data.count)
    }

    private mutating func mark(_ i: Int) {
        while distinct.count <= i >> 6 { distinct.append(0) }
        distinct[i >> 6] |= 1 << UInt64(i & 63)
    }

    /// Whether event `i` was appended with `distinctKeys`.
    func hasDistinctKeys(_ i: Int) -> Bool {
        i >> 6 < distinct.count && distinct[i >> 6] & (1 << UInt64(i & 63)) != 0
    }

    /// Appends every event of `other`, with its metadata and acknowledgements.
    mutating func append(contentsOf other: SinkBatch) {
        if !other.metas.isEmpty || !metas.isEmpty {
            while metas.count < ends.count { metas.append(nil) }
            for i in 0..<other.count { metas.append(other.meta(i)) }
        }
        let base = data.count, first = ends.count
        data.append(contentsOf: other.data)
        ends.append(contentsOf: other.ends.map { $0 + base })
        acks.append(contentsOf: other.acks)
        if !other.distinct.isEmpty {
            for i in 0..<other.count where other.hasDistinctKeys(i) { mark(first + i) }
        }
    }

    /// The payload of event `i`, without its newline.
    func payload(_ i: Int) -> ArraySlice<UInt8> {
        let start = i == 0 ? 0 : ends[i - 1]
        return data[start..<(ends[i] - 1)]
    }

    func meta(_ i: Int) -> EventMeta? { i < metas.count ? metas[i] : nil }

    /// Payloads without their newlines, e.g. to dead-letter them.
    var payloads: [[UInt8]] { (0..<count).map { Array(payload($0)) } }

    /// Every acknowledgement this batch carries is done with (written, or dead-lettered elsewhere).
    func releaseAcks() { for a in acks { a.release() } }
}
