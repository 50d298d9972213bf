import Foundation
import Synchronization

/// The dead letter sink's output. A batch whose events fail is sent again — only the failed events —
/// up to `attempts` times in all, waiting `backoff`, then twice as long, between attempts, on the
/// sink's own thread. What still fails is reported to `done`. Once an attempt series has failed,
/// the output is known broken: later batches get a single attempt, so a shutdown is not slowed down
/// by retrying every queued batch.
final class RetryingOutput: SinkOutput {
    let inner: any SinkOutput
    let attempts: Int
    let backoff: Duration
    private let broken = Atomic<Bool>(false)

    init(_ inner: any SinkOutput, attempts: Int = 4, backoff: Duration = .milliseconds(100)) {
        self.inner = inner; self.attempts = max(1, attempts); self.backoff = backoff
    }

    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
        var pending = batch
        pending.acks = []   // the caller's batch keeps them; retries only carry the events
        var original = Array(0..<batch.count)   // index in `pending` -> index in `batch`
        var delay = backoff
        var attempt = 1
        while true {
            let failures = sendAndWait(pending)
            if failures.isEmpty { done([]); return }
            if attempt >= attempts || broken.load(ordering: .relaxed) {
                broken.store(true, ordering: .relaxed)
                done(failures.map { (index: original[$0.index], reason: $0.reason) })
                return
            }
            var retry = SinkBatch()
            var indices: [Int] = []
            for f in failures {
                retry.append(pending.payload(f.index), meta: pending.meta(f.index))
                indices.append(original[f.index])
            }
            pending = retry
            original = indices
            Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
            delay *= 2
            attempt += 1
        }
    }

    /// Sends `batch` and waits for its outcome (delivery may be confirmed on another thread).
    private func sendAndWait(_ batch: SinkBatch) -> [DeliveryFailure] {
        let outcome = Outcome()
        inner.send(batch) { failures in outcome.set(failures) }
        return outcome.wait()
    }

    func close() { inner.close() }

    /// One batch's failures, handed from the delivery callback to the waiting sink thread.
    private final class Outcome: Sendable {
        private let value = Mutex<[DeliveryFailure]?>(nil)
        private let ready = DispatchSemaphore(value: 0)

        func set(_ failures: [DeliveryFailure]) {
            value.withLock { $0 = failures }
            ready.signal()
        }

        func wait() -> [DeliveryFailure] {
            ready.wait()
            return value.withLock { $0 ?? [] }
        }
    }
}
