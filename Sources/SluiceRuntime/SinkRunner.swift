import SluiceCore
import SluiceSpec

/// One sink: its own bounded queue and its own thread, so a slow sink only stalls others
/// when its policy is `block`. Applies the `when_full` policy on enqueue.
final class SinkRunner: Sendable {
    let name: String
    let policy: WhenFull
    let queue: BoundedQueue<SinkBatch>
    let writer: any SinkWriter

    init(name: String, queue spec: QueueSpec, writer: any SinkWriter) {
        self.name = name
        self.policy = spec.whenFull
        self.queue = BoundedQueue(capacity: spec.capacity)
        self.writer = writer
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
            return queue.push(batch, weight: batch.count) ? .accepted : .dropped
        case .dropNewest:
            return queue.offer(batch, weight: batch.count) ? .accepted : .dropped
        case .deadLetter:
            return queue.offer(batch, weight: batch.count) ? .accepted : .rejected
        }
    }

    /// The sink thread's loop: write batches until the queue is closed and empty.
    /// A failed write is reported and its events handed to `failed` (the dead letter path).
    func drain(stats: PipelineStats, log: @Sendable (String, String) -> Void, failed: (SinkBatch, String) -> Void) {
        while let batch = queue.pop() {
            do {
                try writer.write(batch.data)
                stats.add(name) { $0.emitted += batch.count }
            } catch {
                log("error", error.description)
                failed(batch, error.message)
            }
        }
    }
}
