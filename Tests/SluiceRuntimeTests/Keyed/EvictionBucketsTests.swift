import Testing
@testable import SluiceRuntime

/// `EvictionBuckets`: a key comes out once the watermark has passed its bucket, never before its
/// own time, and every key added comes out exactly once.
@Suite struct EvictionBucketsTests {
    @Test func keysComeOutAfterTheirTimeAndAtMostOneBucketLate() {
        var b = EvictionBuckets<Int>(width: 100)
        // Out of order, negative times, one far ahead.
        let times: [Int64] = [250, 30, 199, 200, -1, -100, -101, 5_000, 120, 99]
        for (i, t) in times.enumerated() { b.add(i, at: t) }
        #expect(b.count == times.count)
        var out: [Int: Int64] = [:]   // key -> watermark it came out at
        for w in stride(from: Int64(-300), through: 5_200, by: 7) {
            while let due = b.popDue(w) { for k in due { out[k] = w } }
        }
        #expect(out.count == times.count)
        #expect(b.count == 0)
        for (i, t) in times.enumerated() {
            let w = out[i]!
            #expect(w >= t, "key \(i) at \(t) came out early at \(w)")
            #expect(w < t + 100 + 7, "key \(i) at \(t) came out more than a bucket late at \(w)")
        }
    }

    @Test func addReturnsWhenItsBucketIsTaken() {
        var b = EvictionBuckets<Int>(width: 10)
        #expect(b.add(1, at: 15) == 19)
        #expect(b.add(2, at: -3) == -1)
        #expect(b.popDue(18) == [2])
        #expect(b.popDue(18) == nil)
        #expect(b.popDue(19) == [1])
        #expect(b.add(3, at: Int64.max) == Int64.max)
        #expect(b.popDue(Int64.max) == [3])
    }
}
