import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore

@Suite struct QueueAndSequencerTests {
    @Test func capacityIsMeasuredInWeightAndOfferRefusesWhenFull() {
        let q = BoundedQueue<Int>(capacity: 10)
        #expect(q.offer(1, weight: 6))
        #expect(!q.offer(2, weight: 5))
        #expect(q.offer(3, weight: 4))
        #expect(q.currentWeight == 10)
        #expect(q.pop() == 1)
        #expect(q.offer(2, weight: 5))
    }

    @Test func anOversizedItemIsAcceptedIntoAnEmptyQueue() {
        let q = BoundedQueue<Int>(capacity: 3)
        #expect(q.offer(7, weight: 100))
        #expect(!q.offer(8, weight: 1))
    }

    @Test func closeLetsConsumersDrainThenReturnsNil() {
        let q = BoundedQueue<Int>(capacity: 5)
        q.push(1); q.push(2)
        q.close()
        #expect(!q.push(3))
        #expect(q.pop() == 1)
        #expect(q.pop() == 2)
        #expect(q.pop() == nil)
    }

    @Test func aBlockedProducerResumesWhenAConsumerTakesAnItem() {
        let q = BoundedQueue<Int>(capacity: 1)
        q.push(1)
        let done = DispatchSemaphore(value: 0)
        Thread { q.push(2); done.signal() }.start()
        #expect(done.wait(timeout: .now() + .milliseconds(100)) == .timedOut)
        #expect(q.pop() == 1)
        #expect(done.wait(timeout: .now() + .seconds(5)) == .success)
        #expect(q.pop() == 2)
    }

    @Test func sequencerPublishesInSequenceOrderWhateverTheFinishingOrder() {
        let sequencer = Sequencer(limit: 4)
        let order = OrderLog()
        let group = DispatchGroup()
        for n in (0..<50).reversed() {
            group.enter()
            Thread {
                usleep(UInt32.random(in: 0...2000))
                sequencer.complete(UInt64(n)) { order.append(n) }
                group.leave()
            }.start()
        }
        group.wait()
        #expect(order.values == Array(0..<50))
    }
}

final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int] = []
    func append(_ n: Int) { lock.lock(); items.append(n); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return items }
}
