/// Event-time timers of one keyed stage worker: a binary min-heap ordered by time, then `order`
/// (so at equal times a join fires its right events before it evicts lefts), then `seq`.
/// A timer fires once the watermark reaches its time. Heap entries are plain numbers; the keys
/// live in a slot table, so sifting never retains or releases anything.
struct TimerQueue<Payload: Sendable>: Sendable {
    struct Timer {
        var time: Int64
        var order: UInt8
        var seq: UInt64
        var key: Payload
    }

    private struct Entry {
        var time: Int64
        var seq: UInt64
        var order: UInt8
        var slot: Int32
    }

    private var heap: [Entry] = []
    private var keys: [Payload?] = []
    private var freeSlots: [Int32] = []
    private var counter: UInt64 = 0

    var count: Int { heap.count }

    mutating func add(at time: Int64, order: UInt8 = 0, key: Payload, seq: UInt64? = nil) {
        counter += 1
        let slot: Int32
        if let s = freeSlots.popLast() { slot = s; keys[Int(s)] = key } else { slot = Int32(keys.count); keys.append(key) }
        heap.append(Entry(time: time, seq: seq ?? counter, order: order, slot: slot))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard less(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the earliest timer if it is due at `watermark`.
    mutating func popDue(_ watermark: Int64) -> Timer? {
        guard let first = heap.first, first.time <= watermark else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var i = 0
            let n = heap.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && less(heap[l], heap[m]) { m = l }
                if r < n && less(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        guard let key = keys[Int(first.slot)] else { return nil }   // every queued slot holds its payload
        keys[Int(first.slot)] = nil
        freeSlots.append(first.slot)
        return Timer(time: first.time, order: first.order, seq: first.seq, key: key)
    }

    @inline(__always)
    private func less(_ a: Entry, _ b: Entry) -> Bool {
        if a.time != b.time { return a.time < b.time }
        if a.order != b.order { return a.order < b.order }
        return a.seq < b.seq
    }
}
