import SluiceCore

/// What a source hands its batches to: the bounded work queue, stamping each batch with the
/// source's next sequence number. Used only by the source's own thread.
final class SourceOutlet {
    let source: Int
    private let work: BoundedQueue<Batch>
    private var sequence: UInt64 = 0

    /// Where a source sends events it rejects itself (a generator's failed calls); nil drops them.
    let deadLetters: (@Sendable ([DeadLetter]) -> Void)?

    init(source: Int, work: BoundedQueue<Batch>, deadLetters: (@Sendable ([DeadLetter]) -> Void)? = nil) {
        self.source = source; self.work = work; self.deadLetters = deadLetters
    }

    /// Blocks while the work queue is full (backpressure).
    func emit(_ events: [Event], acknowledgement: Acknowledgement? = nil) {
        guard !events.isEmpty else { return }
        if work.push(Batch(source: source, sequence: sequence, events: events, acknowledgement: acknowledgement)) { sequence += 1 }
    }

    /// Hands the batch over if there is room within `wait` seconds; false means "still full, try again later".
    func offer(_ events: [Event], acknowledgement: Acknowledgement? = nil, wait: Double = 0) -> Bool {
        guard !events.isEmpty else { return true }
        let batch = Batch(source: source, sequence: sequence, events: events, acknowledgement: acknowledgement)
        guard wait > 0 ? work.push(batch, timeout: wait) : work.offer(batch) else { return false }
        sequence += 1
        return true
    }
}
