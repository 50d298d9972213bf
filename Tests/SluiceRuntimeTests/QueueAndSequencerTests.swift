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

    @Test func aBlockedProducerResumesWhenAConsumerTakesAnItem() async throws {
        let q = BoundedQueue<Int>(capacity: 1)
        q.push(1)
        let done = DispatchSemaphore(value: 0)
        Thread { q.push(2); done.signal() }.start()
        // Still blocked after 100 ms (a property over time: a fixed window), then resumed by a pop.
        #expect(try await offPool { done.wait(timeout: .now() + .milliseconds(100)) } == .timedOut)
        #expect(q.pop() == 1)
        #expect(try await offPool { done.wait(timeout: .now() + .seconds(5)) } == .success)
        #expect(q.pop() == 2)
    }

    @Test func sequencerPublishesInSequenceOrderWhateverTheFinishingOrder() async throws {
        var rnd = SeededRandom(seed: 50)   // prints its seed; SLUICE_TEST_SEED replays another
        let delays = (0..<50).map { _ in UInt32(rnd.int(0...2000)) }   // microseconds before each completes
        let sequencer = Sequencer(limit: 4)
        let order = OrderLog()
        let group = DispatchGroup()
        for n in (0..<50).reversed() {
            group.enter()
            Thread {
                usleep(delays[n])   // on its own thread, not the cooperative pool
                sequencer.complete(UInt64(n)) { order.append(n) }
                group.leave()
            }.start()
        }
        try await offPool { group.wait() }
        #expect(order.values == Array(0..<50), "seed \(rnd.seed)")
    }
}

/// Runs a blocking `body` on a thread of its own, never on Swift Testing's cooperative pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

final class OrderLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int] = []
    func append(_ n: Int) { lock.lock(); items.append(n); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return items }
}
