import Synchronization

/// Rate-limits the error log of one sink: the first failure is logged at once, later ones are
/// counted and summarised at most once per `interval`, and `finish()` logs one line with the
/// run's totals. A sink that fails every batch thus writes a few lines, not one per batch.
/// Delivery callbacks may arrive on other threads (Kafka), hence the lock.
final class SinkFailureLog: Sendable {
    private struct State {
        var totalEvents = 0
        var totalBatches = 0
        /// Failures since the last line written.
        var pendingEvents = 0
        var pendingBatches = 0
        var lastReason = ""
        var lastLine: ContinuousClock.Instant?
    }

    let sink: String
    let interval: Duration
    private let log: @Sendable (String, String) -> Void
    private let state = Mutex(State())

    init(sink: String, interval: Duration = .seconds(10), log: @escaping @Sendable (String, String) -> Void) {
        self.sink = sink; self.interval = interval; self.log = log
    }

    /// Records `events` undelivered events of one batch.
    func record(events: Int, reason: String) {
        let now = ContinuousClock.now
        let line: String? = state.withLock { s in
            s.totalEvents = s.totalEvents.saturatingAdd(events)
            s.totalBatches = s.totalBatches.saturatingAdd(1)
            s.pendingEvents = s.pendingEvents.saturatingAdd(events)
            s.pendingBatches = s.pendingBatches.saturatingAdd(1)
            s.lastReason = reason
            if let last = s.lastLine, now - last < interval { return nil }
            let first = s.lastLine == nil
            let text = first
                ? "sink '\(sink)': \(events) event(s) not delivered: \(reason) (further failures are summarised)"
                : "sink '\(sink)': \(s.pendingEvents) more event(s) in \(s.pendingBatches) batch(es) not delivered; last error: \(reason)"
            s.pendingEvents = 0; s.pendingBatches = 0
            s.lastLine = now
            return text
        }
        if let line { log("error", line) }
    }

    /// At the end of the run: one line with the totals, if anything failed after the first line.
    func finish() {
        let line: String? = state.withLock { s in
            guard s.totalBatches > 0, s.pendingBatches > 0 || s.totalBatches > 1 else { return nil }
            return "sink '\(sink)': \(s.totalEvents) event(s) in \(s.totalBatches) batch(es) not delivered in this run; last error: \(s.lastReason)"
        }
        if let line { log("error", line) }
    }
}
