import Synchronization
import SluiceCore
import SluiceSpec

/// One sink: its own bounded queue and its own thread, so a slow sink only stalls others
/// when its policy is `block`. Applies the `when_full` policy on enqueue.
final class SinkRunner: Sendable {
    let name: String
    let policy: WhenFull
    let queue: BoundedQueue<SinkBatch>
    let output: any SinkOutput
    /// `(events, linger)`: batches are merged until they hold `events` or `linger` has passed since the
    /// first was taken (HTTP sinks); nil = each batch is sent as it comes.
    let coalesce: (events: Int, linger: Duration)?
    /// Events handed to the output and not yet confirmed written.
    private let inFlight = Atomic<Int>(0)
    /// Where `GET /tap` samples what this sink wrote (nil without an admin endpoint).
    let tap: (points: TapPoints, slot: Int)?

    /// True while some taken batch has not been written yet (a stalled output, say).
    var isWriting: Bool { inFlight.load(ordering: .relaxed) > 0 }

    init(name: String, queue spec: QueueSpec, bytes: Int = .max, output: any SinkOutput, coalesce: (events: Int, linger: Duration)? = nil,
         tap: (points: TapPoints, slot: Int)? = nil) {
        self.name = name
        self.coalesce = coalesce
        self.tap = tap
        self.policy = spec.whenFull
        self.queue = BoundedQueue(capacity: spec.capacity, byteCapacity: bytes)
        self.output = output
    }

    /// What happened to a batch offered to the sink.
    enum Admission {
        case accepted
        case dropped
        /// Queue full under `dead_letter`: the caller dead-letters these events.
        case rejected
    }

    func enqueue(_ batch: SinkBatch) -> Admission {
        switch policy {
        case .block:
            return queue.push(batch, weight: batch.count, bytes: batch.data.count) ? .accepted : .dropped
        case .dropNewest:
            return queue.offer(batch, weight: batch.count, bytes: batch.data.count) ? .accepted : .dropped
        case .deadLetter:
            return queue.offer(batch, weight: batch.count, bytes: batch.data.count) ? .accepted : .rejected
        }
    }

    /// The sink thread's loop: send batches until the queue is closed and empty, then wait for
    /// outstanding deliveries. Undelivered events go to `failed` (the dead letter path), which
    /// takes over their acknowledgements; delivered ones release theirs.
    /// The dead letter sink passes `releaseFailed: false`: an acknowledgement whose dead letter could
    /// not be written is never released, so its Kafka offset is never committed.
    func drain(stats: PipelineStats, log: @escaping @Sendable (String, String) -> Void, releaseFailed: Bool = true,
               failed: @escaping @Sendable (SinkBatch, [DeliveryFailure]) -> Void) {
        let name = name
        let failureLog = SinkFailureLog(sink: name, log: log)
        while let batch = nextBatch() {
            inFlight.add(batch.count, ordering: .relaxed)
            output.send(batch) { [self] failures in
                inFlight.subtract(batch.count, ordering: .relaxed)
                stats.add(name) { $0.emitted += batch.count - failures.count }
                if TapPoints.anyWaiting, let (points, slot) = tap, failures.isEmpty, !batch.isEmpty {
                    points.offer(slot) { Array(batch.payload(0)) }
                }
                if !failures.isEmpty {
                    failureLog.record(events: failures.count, reason: failures[0].reason)
                    failed(batch, failures)
                    if !releaseFailed { return }
                }
                batch.releaseAcks()
            }
        }
        output.close()
        failureLog.finish()
    }

    /// The next batch to send: one from the queue, merged with more while `coalesce` asks for it.
    private func nextBatch() -> SinkBatch? {
        guard var batch = queue.pop() else { return nil }
        guard let (events, linger) = coalesce else { return batch }
        let deadline = ContinuousClock.now + linger
        while batch.count < events {
            let left = deadline - ContinuousClock.now
            guard left > .zero, let more = queue.pop(timeout: Double(left.milliseconds) / 1000) else { break }
            batch.append(contentsOf: more)
        }
        return batch
    }
}
