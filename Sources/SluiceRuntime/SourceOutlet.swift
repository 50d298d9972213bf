import SluiceCore

/// What a source hands its batches to: the bounded work queue, stamping each batch with the
/// source's next sequence number (and, when it feeds stateful transforms, event times and
/// watermarks). Used only by the source's own thread.
final class SourceOutlet {
    let source: Int
    private let work: BoundedQueue<Batch>
    private var sequence: UInt64 = 0
    private let timing: SourceTiming?

    /// Where a source sends events it rejects itself (a generator's failed calls); nil drops them.
    let deadLetters: (@Sendable ([DeadLetter]) -> Void)?

    init(source: Int, work: BoundedQueue<Batch>, timing: SourceTiming? = nil,
         deadLetters: (@Sendable ([DeadLetter]) -> Void)? = nil) {
        self.source = source; self.work = work; self.timing = timing; self.deadLetters = deadLetters
    }

    /// Blocks while the work queue is full (backpressure).
    func emit(_ events: [Event], acknowledgement: Acknowledgement? = nil) {
        guard !events.isEmpty else { return }
        var batch = Batch(source: source, sequence: sequence, events: events, acknowledgement: acknowledgement)
        if let timing {
            timing.stamp(&batch)
            timing.holdBack(batch)
            timing.setBusy(true)
        }
        defer { timing?.setBusy(false) }
        if work.push(batch, bytes: batch.byteCount) { sequence += 1 }
    }

    /// Hands the batch over if there is room within `wait` seconds; false means "still full, try again later".
    /// (A source that offers keeps its own batch; event times are stamped on the batch that goes.)
    func offer(_ events: [Event], acknowledgement: Acknowledgement? = nil, wait: Double = 0) -> Bool {
        guard !events.isEmpty else { return true }
        var batch = Batch(source: source, sequence: sequence, events: events, acknowledgement: acknowledgement)
        if let timing {
            timing.setBusy(true)
            defer { timing.setBusy(false) }
            guard work.waitForRoom(weight: 1, bytes: batch.byteCount, timeout: wait) else { return false }
            timing.stamp(&batch)
            timing.holdBack(batch)
            work.push(batch, bytes: batch.byteCount)
            sequence += 1
            return true
        }
        let bytes = batch.byteCount
        guard wait > 0 ? work.push(batch, bytes: bytes, timeout: wait) : work.offer(batch, bytes: bytes) else { return false }
        sequence += 1
        return true
    }

    /// The source has ended (or stopped): its watermark becomes +infinity, so every window it
    /// holds open closes and every held result is emitted.
    func finish() {
        guard let timing else { return }
        timing.finish()
        var batch = Batch(source: source, sequence: sequence, events: [])
        batch.watermark = EventTime.infinity
        if work.push(batch) { sequence += 1 }
    }
}
