import Testing
@testable import SluiceRuntime

/// The HTTP lookups' cache (LRU with a lifetime per entry) and rate window.
@Suite struct LookupCacheTests {
    @Test func theLeastRecentlyUsedEntryGoesFirstAndExpiredEntriesAreGone() {
        var c = LookupCache<Int>(capacity: 2)
        c.put("a", 1, expires: 100)
        c.put("b", 2, expires: 100)
        #expect(c.get("a", now: 0) == 1)      // a is now the most recently used
        c.put("c", 3, expires: 100)           // evicts b
        #expect(c.get("b", now: 0) == nil)
        #expect(c.get("a", now: 0) == 1 && c.get("c", now: 0) == 3)
        #expect(c.count == 2)
        #expect(c.get("a", now: 100) == nil)  // expired: dropped
        #expect(c.count == 1)
        c.put("d", 4, expires: 200)           // reuses the freed slot
        c.put("c", 30, expires: 200)          // an update, not a new entry
        #expect(c.count == 2 && c.get("c", now: 150) == 30 && c.get("d", now: 150) == 4)
        var none = LookupCache<Int>(capacity: 0)
        none.put("a", 1, expires: 100)
        #expect(none.get("a", now: 0) == nil)
    }

    @Test func theRateWindowSpacesStartsAndNeverAllowsMoreThanTheLimitInAWindow() {
        var r = RateWindow(limit: 4, windowSeconds: 1)
        var starts: [Double] = []
        var t = 0.0
        while starts.count < 12 {
            t = r.allowedAt(t)
            r.record(t)
            starts.append(t)
        }
        #expect(zip(starts, starts.dropFirst()).allSatisfy { $1 - $0 >= 0.25 - 1e-9 })
        #expect((0..<(starts.count - 4)).allSatisfy { starts[$0 + 4] - starts[$0] >= 1 - 1e-9 })
    }
}
