/// One partition's delivered-but-unacknowledged offsets, in delivery order (offsets increase, with
/// possible gaps from compaction or transaction markers).
///
/// `committable` is the offset to commit (last offset of the *contiguous* acknowledged prefix + 1),
/// so a committed offset is never past an unacknowledged record, whatever order acks arrive in.
/// Not thread-safe: the consumer keeps its trackers behind a lock.
struct OffsetTracker: Sendable {
    /// Which tracker of its partition this is (each new one gets a new number): a batch receipt
    /// acknowledges only the tracker it was registered with, never a later one of a reassigned or
    /// reset partition whose entries may end at the same offsets.
    var generation: UInt64 = 0
    private var offsets: [Int64] = []
    private var acked: [Bool] = []
    private var head = 0
    /// Next offset to commit, once some prefix has been acknowledged.
    private(set) var committable: Int64?

    init(generation: UInt64 = 0) { self.generation = generation }

    /// Delivered records not yet covered by `committable`.
    var outstanding: Int { offsets.count - head }

    /// The last offset registered, if any is outstanding.
    var lastDelivered: Int64? { head < offsets.count ? offsets[offsets.count - 1] : nil }

    /// Registers a delivered record. Offsets must increase; returns false (and ignores the offset)
    /// if it does not, so the caller can start a fresh tracker.
    mutating func delivered(_ offset: Int64) -> Bool {
        if let last = offsets.last, head < offsets.count, offset <= last { return false }
        if let c = committable, head == offsets.count, offset < c { return false }
        offsets.append(offset)
        acked.append(false)
        return true
    }

    /// Registers the last record of a batch whose records of this partition span `first...last`
    /// (acknowledged together with `acknowledge(last)`). Returns false (and registers nothing) if
    /// `first` does not come after what was registered before, so the caller can start afresh.
    mutating func delivered(first: Int64, last: Int64) -> Bool {
        if let prev = offsets.last, head < offsets.count, first <= prev { return false }
        if let c = committable, head == offsets.count, first < c { return false }
        offsets.append(last)
        acked.append(false)
        return true
    }

    /// Takes back the last registration, `offset`, if it is still outstanding and unacknowledged
    /// (its batch was refused downstream and will be registered again when offered again).
    mutating func retract(_ offset: Int64) {
        guard head < offsets.count, offsets[offsets.count - 1] == offset, !acked[acked.count - 1] else { return }
        offsets.removeLast()
        acked.removeLast()
        if head == offsets.count { offsets.removeAll(keepingCapacity: true); acked.removeAll(keepingCapacity: true); head = 0 }
    }

    /// Marks every outstanding offset below `next` acknowledged (a checkpoint covers them).
    /// Returns true when `committable` moved forward.
    mutating func acknowledge(below next: Int64) -> Bool {
        var moved = false
        while head < offsets.count && offsets[head] < next {
            acked[head] = true
            committable = offsets[head] + 1
            head += 1
            moved = true
        }
        while head < offsets.count && acked[head] {
            committable = offsets[head] + 1
            head += 1
        }
        if head == offsets.count { offsets.removeAll(keepingCapacity: true); acked.removeAll(keepingCapacity: true); head = 0 }
        return moved
    }

    /// Marks one offset acknowledged. Returns true when `committable` moved forward.
    /// Unknown offsets (never delivered, already committed, or duplicate acks) are ignored.
    mutating func acknowledge(_ offset: Int64) -> Bool {
        guard head < offsets.count, offset >= offsets[head], offset <= offsets[offsets.count - 1] else { return false }
        // Binary search in the outstanding range.
        var lo = head, hi = offsets.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if offsets[mid] < offset { lo = mid + 1 } else { hi = mid }
        }
        guard offsets[lo] == offset, !acked[lo] else { return false }
        acked[lo] = true
        guard lo == head else { return false }
        while head < offsets.count && acked[head] {
            committable = offsets[head] + 1
            head += 1
        }
        if head == offsets.count {
            offsets.removeAll(keepingCapacity: true); acked.removeAll(keepingCapacity: true); head = 0
        } else if head > 4096 && head * 2 > offsets.count {
            offsets.removeFirst(head); acked.removeFirst(head); head = 0
        }
        return true
    }
}

/// A partition of a topic.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(topic: String, partition: Int32) { self.topic = topic; self.partition = partition }
    public var description: String { "\(topic)[\(partition)]" }
}
