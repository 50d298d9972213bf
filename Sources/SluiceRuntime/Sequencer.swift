import Foundation

/// Publishes a source's batch results in input order while workers finish in any order.
/// A worker hands in its result and goes on to the next batch; whichever worker completes the
/// next expected sequence number publishes it and every result queued behind it. At most `limit`
/// results wait (a worker that runs too far ahead blocks), so memory stays bounded.
/// Guarded by `condition`.
final class Sequencer: @unchecked Sendable {
    private let condition = NSCondition()
    private let limit: Int
    private var next: UInt64 = 0
    private var waiting: [UInt64: () -> Void] = [:]
    private var publishing = false

    init(limit: Int = 16) { self.limit = max(1, limit) }

    /// Hands in the result of batch `sequence`; `publish` runs once every earlier batch has been published.
    func complete(_ sequence: UInt64, _ publish: @escaping () -> Void) {
        condition.lock()
        while sequence != next && waiting.count >= limit { condition.wait() }
        waiting[sequence] = publish
        if publishing {
            condition.unlock()
            return
        }
        publishing = true
        while let ready = waiting.removeValue(forKey: next) {
            condition.unlock()
            ready()
            condition.lock()
            next += 1
            condition.broadcast()
        }
        publishing = false
        condition.unlock()
    }
}
