import Foundation
import Synchronization
import Testing
import SluiceCore

/// The queues between sources, workers and sinks are bounded in events and in bytes.
@Suite struct BoundedQueueTests {
    @Test func theByteBudgetRefusesWhatWouldNotFitEvenUnderTheEventCapacity() {
        let q = BoundedQueue<Int>(capacity: 1000, byteCapacity: 100)
        #expect(q.offer(1, weight: 1, bytes: 60))
        #expect(!q.offer(2, weight: 1, bytes: 60))      // 120 bytes > 100, although 2 events << 1000
        #expect(q.offer(3, weight: 1, bytes: 40))
        #expect(q.currentBytes == 100 && q.currentWeight == 2)
        #expect(q.pop() == 1)
        #expect(q.currentBytes == 40)
        #expect(q.offer(4, weight: 1, bytes: 60))
        #expect(!q.waitForRoom(weight: 1, bytes: 1, timeout: 0))
    }

    @Test func anEmptyQueueTakesOneItemLargerThanTheBudgetSoNothingWaitsForever() {
        let q = BoundedQueue<Int>(capacity: 10, byteCapacity: 100)
        #expect(q.offer(1, weight: 1, bytes: 10_000))
        #expect(!q.offer(2, weight: 1, bytes: 1))
        #expect(q.pop() == 1)
        #expect(q.offer(2, weight: 1, bytes: 1))
    }

    @Test func aBlockedPushResumesWhenBytesAreTaken() async {
        let q = BoundedQueue<Int>(capacity: 1000, byteCapacity: 100)
        #expect(q.offer(1, weight: 1, bytes: 90))
        final class Flag: Sendable { let value = Atomic<Bool>(false); var isSet: Bool { value.load(ordering: .acquiring) } }
        let pushed = Flag()
        let thread = Thread {
            q.push(2, weight: 1, bytes: 50)   // blocks: 140 > 100
            pushed.value.store(true, ordering: .releasing)
        }
        thread.start()
        try? await Task.sleep(for: .milliseconds(100))
        #expect(!pushed.isSet)
        #expect(q.pop() == 1)
        let deadline = ContinuousClock.now + .seconds(5)
        while !pushed.isSet && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        #expect(pushed.isSet)
        #expect(q.currentBytes == 50)
    }
}
