import Foundation

/// Lets parallel workers publish a source's batches in input order: a worker waits for its turn,
/// publishes, then hands the turn to the next sequence number. Guarded by `condition`.
final class Sequencer: @unchecked Sendable {
    private let condition = NSCondition()
    private var next: UInt64 = 0

    /// Runs `publish` once every earlier batch of this source has been published.
    func inTurn(_ sequence: UInt64, _ publish: () -> Void) {
        condition.lock()
        while next != sequence { condition.wait() }
        condition.unlock()
        publish()
        condition.lock()
        next += 1
        condition.broadcast()
        condition.unlock()
    }
}
