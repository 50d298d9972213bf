/// Event-time timers of one keyed stage worker: a binary min-heap ordered by time, then `order`
/// (so at equal times a join fires its right events before it evicts lefts), then insertion.
/// A timer fires once the watermark reaches its time.
struct TimerQueue {
    struct Timer {
        var time: Int64
        var order: UInt8
        var seq: UInt64
        var key: StateKey
    }

    private var heap: [Timer] = []
    private var counter: UInt64 = 0

    var count: Int { heap.count }

    mutating func add(at time: Int64, order: UInt8 = 0, key: StateKey, seq: UInt64? = nil) {
        counter += 1
        heap.append(Timer(time: time, order: order, seq: seq ?? counter, key: key))
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
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < heap.count && less(heap[l], heap[m]) { m = l }
                if r < heap.count && less(heap[r], heap[m]) { m = r }
                if m == i { break }
                heap.swapAt(i, m)
                i = m
            }
        }
        return first
    }

    private func less(_ a: Timer, _ b: Timer) -> Bool {
        if a.time != b.time { return a.time < b.time }
        if a.order != b.order { return a.order < b.order }
        return a.seq < b.seq
    }
}
