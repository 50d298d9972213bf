import Foundation
import Synchronization

/// Retries a sink's failed deliveries per its `retry:` policy, on the sink's own thread: the events of
/// a batch that failed transiently are sent again (only those), after `Backoff` delays, up to
/// `maxRetries` times; a permanent failure (an HTTP 4xx, say) is reported at once. What still fails
/// is reported to `done` with its last error, and the runner dead-letters it.
///
/// While it waits, the sink takes no new batch, so only its own queue fills — and its `when_full`
/// policy decides what happens next (`block` back to the sources, or drop, or dead-letter).
///
/// With `giveUpAfterExhaustion` (the dead letter sink), once a batch has used up its retries the
/// output is known broken: later batches get a single attempt, so a shutdown is not slowed down.
final class RetryingOutput: SinkOutput {
    let inner: any SinkOutput
    let backoff: Backoff
    let giveUpAfterExhaustion: Bool
    /// Retries made so far (all batches), for tests and logs.
    let retries = Atomic<Int>(0)
    private let broken = Atomic<Bool>(false)
    private let log: @Sendable (String) -> Void

    init(_ inner: any SinkOutput, backoff: Backoff, giveUpAfterExhaustion: Bool = false, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.inner = inner; self.backoff = backoff; self.giveUpAfterExhaustion = giveUpAfterExhaustion; self.log = log
    }

    /// The dead letter sink's policy: 3 retries from 100 ms, then known broken.
    convenience init(deadLetter inner: any SinkOutput) {
        self.init(inner, backoff: Backoff(maxRetries: 3, min: .milliseconds(100), max: .seconds(2)), giveUpAfterExhaustion: true)
    }

    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
        var pending = batch
        pending.acks = []   // the caller's batch keeps them; retries only carry the events
        var original = Array(0..<batch.count)   // index in `pending` -> index in `batch`
        var final: [DeliveryFailure] = []       // permanent failures, reported at the end
        var retry = 0
        while true {
            let failures = sendAndWait(pending)
            var again: [DeliveryFailure] = []
            var hint: Duration?
            for f in failures {
                switch f.retry {
                case .permanent: final.append(DeliveryFailure(index: original[f.index], reason: f.reason, retry: .permanent))
                case .transient(let after):
                    again.append(f)
                    if let after { hint = Swift.max(hint ?? after, after) }
                }
            }
            if again.isEmpty { done(final); return }
            let exhausted = retry >= backoff.maxRetries || (giveUpAfterExhaustion && broken.load(ordering: .relaxed))
            if exhausted {
                if giveUpAfterExhaustion { broken.store(true, ordering: .relaxed) }
                let note = backoff.maxRetries > 0 ? " (after \(retry) retries)" : ""
                done(final + again.map { DeliveryFailure(index: original[$0.index], reason: $0.reason + note, retry: $0.retry) })
                return
            }
            var next = SinkBatch()
            var indices: [Int] = []
            for f in again {
                next.append(pending.payload(f.index), meta: pending.meta(f.index))
                indices.append(original[f.index])
            }
            pending = next
            original = indices
            retry += 1
            retries.add(1, ordering: .relaxed)
            let wait = backoff.delay(retry: retry, retryAfter: hint, unit: Double.random(in: 0...1))
            if retry == 1 || retry == backoff.maxRetries {
                log("\(again.count) event(s) failed (\(again[0].reason)); retry \(retry) of \(backoff.maxRetries) in \(wait)")
            }
            Thread.sleep(forTimeInterval: Double(wait.milliseconds) / 1000)
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
