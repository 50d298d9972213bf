import Synchronization

/// Tracks the destinations still holding part of a batch (sinks, the dead letter sink).
/// When the last one has written its part, the batch's source is told (a Kafka source then
/// lets its offsets be committed). Starts with one hold, owned by whoever publishes the batch.
public final class Acknowledgement: Sendable {
    private let pending = Atomic<Int>(1)
    private let onComplete: @Sendable () -> Void

    public init(onComplete: @escaping @Sendable () -> Void) {
        self.onComplete = onComplete
    }

    /// One more destination holds part of the batch.
    public func hold() {
        pending.add(1, ordering: .relaxed)
    }

    /// A destination is done with its part; the last release completes the batch.
    public func release() {
        if pending.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { onComplete() }
    }
}
