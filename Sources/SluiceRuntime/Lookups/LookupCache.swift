/// A least-recently-used cache of lookup answers with a lifetime per entry (rows and 404s have
/// their own). Not thread-safe: its owner locks around it.
struct LookupCache<Value> {
    private struct Entry {
        var key: String
        var value: Value
        var expires: Double
        var newer: Int   // towards the most recently used; -1 = none
        var older: Int
    }

    let capacity: Int
    private var index: [String: Int] = [:]
    private var entries: [Entry] = []
    private var newest = -1
    private var oldest = -1
    private var freeSlots: [Int] = []

    init(capacity: Int) { self.capacity = max(0, capacity) }

    var count: Int { index.count }

    /// The live value under `key` (marking it recently used); expired entries are dropped.
    mutating func get(_ key: String, now: Double) -> Value? {
        guard let i = index[key] else { return nil }
        if entries[i].expires <= now {
            remove(i)
            return nil
        }
        unlink(i)
        pushNewest(i)
        return entries[i].value
    }

    mutating func put(_ key: String, _ value: Value, expires: Double) {
        guard capacity > 0 else { return }
        if let i = index[key] {
            entries[i].value = value
            entries[i].expires = expires
            unlink(i)
            pushNewest(i)
            return
        }
        if index.count >= capacity, oldest >= 0 { remove(oldest) }
        let e = Entry(key: key, value: value, expires: expires, newer: -1, older: -1)
        let i: Int
        if let free = freeSlots.popLast() { entries[free] = e; i = free } else { entries.append(e); i = entries.count - 1 }
        index[key] = i
        pushNewest(i)
    }

    private mutating func remove(_ i: Int) {
        unlink(i)
        index[entries[i].key] = nil
        freeSlots.append(i)
    }

    private mutating func unlink(_ i: Int) {
        let n = entries[i].newer, o = entries[i].older
        if n >= 0 { entries[n].older = o } else if newest == i { newest = o }
        if o >= 0 { entries[o].newer = n } else if oldest == i { oldest = n }
        entries[i].newer = -1
        entries[i].older = -1
    }

    private mutating func pushNewest(_ i: Int) {
        entries[i].older = newest
        entries[i].newer = -1
        if newest >= 0 { entries[newest].newer = i }
        newest = i
        if oldest < 0 { oldest = i }
    }
}

/// At most `limit` starts in any window of `windowSeconds` (a sliding log of the last `limit`
/// starts), spread evenly: at least `windowSeconds / limit` between two starts, so a burst of
/// lookups does not arrive at the service as a burst.
struct RateWindow {
    let limit: Int
    let windowSeconds: Double
    private var starts: [Double] = []
    private var next = 0
    private var last = -Double.infinity

    init(limit: Int, windowSeconds: Double) { self.limit = max(1, limit); self.windowSeconds = windowSeconds }

    /// When the next start is allowed (now or later).
    func allowedAt(_ now: Double) -> Double {
        var at = max(now, last + windowSeconds / Double(limit))
        if starts.count >= limit { at = max(at, starts[next] + windowSeconds) }   // the oldest of the last `limit` starts
        return at
    }

    mutating func record(_ t: Double) {
        last = t
        if starts.count < limit { starts.append(t); return }
        starts[next] = t
        next = (next + 1) % limit
    }
}
