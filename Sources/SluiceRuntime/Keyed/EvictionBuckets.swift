import DequeModule

/// Keys to evict once the watermark passes a time, for state whose eviction nobody observes but
/// memory (a dedup's kept keys: a key kept a little longer gives the same answers). Keys are
/// grouped by time into buckets of `width` ms: adding is an append to a bucket near the newest
/// (event time is nearly in order), and a bucket is taken whole once the watermark has passed its
/// last millisecond, so a key is evicted at most `width` late. No per-key heap sifting.
struct EvictionBuckets<Key: Sendable>: Sendable {
    private struct Bucket: Sendable {
        var id: Int64
        var keys: [Key]
    }

    private let width: Int64
    /// Sorted by id, oldest first.
    private var buckets: Deque<Bucket> = []
    private(set) var count = 0

    init(width: Int64) { self.width = max(width, 1) }

    /// Schedules `key` for eviction once the watermark reaches `time`. Returns the time its bucket
    /// is taken at (its last millisecond): everything due by then may share the entry.
    @discardableResult
    mutating func add(_ key: Key, at time: Int64) -> Int64 {
        let id = time >= 0 ? time / width : (time &+ 1) / width &- 1   // floor division
        count += 1
        var i = buckets.count
        while i > 0 && buckets[i - 1].id > id { i -= 1 }
        if i > 0 && buckets[i - 1].id == id {
            buckets[i - 1].keys.append(key)
        } else {
            buckets.insert(Bucket(id: id, keys: [key]), at: i)
        }
        return lastTime(of: id)
    }

    private func lastTime(of id: Int64) -> Int64 {
        let (end, overflow) = (id &+ 1).multipliedReportingOverflow(by: width)
        return overflow ? Int64.max : end &- 1
    }

    /// The keys of the oldest bucket whose every time is at or before `watermark`, if any.
    mutating func popDue(_ watermark: Int64) -> [Key]? {
        guard let first = buckets.first else { return nil }
        guard lastTime(of: first.id) <= watermark else { return nil }
        count -= first.keys.count
        return buckets.removeFirst().keys
    }
}
