import Foundation
import Synchronization
import SluiceCore

/// One memcached connection of a `MemcachedOutput` and the thread that drives it: the sink's own
/// thread for lane 0 (`thread: nil`), else a thread of its own fed through a one-job inbox. The
/// libmemcached handle is only touched by that thread; the lock makes the ownership checkable.
final class MemcachedLane: Sendable {
    /// Sets to make: events of `batch` with their rendered keys; `finish` gets the failures.
    struct Job: Sendable {
        var batch: SinkBatch
        var items: [(index: Int, key: [UInt8])]
        var ttl: Int
        var finish: @Sendable ([DeliveryFailure]) -> Void
    }

    private let connection: Mutex<MemcachedConnection>
    private let inbox = BoundedQueue<Job>(capacity: 1)
    private let stopped = DispatchSemaphore(value: 0)
    private let threaded: Bool

    init(_ connection: sending MemcachedConnection, thread name: String?) {
        self.connection = Mutex(connection)
        threaded = name != nil
        guard let name else { return }
        let thread = Thread { [self] in
            while let job = inbox.pop() { job.finish(run(batch: job.batch, items: job.items, ttl: job.ttl)) }
            stopped.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Hands `job` to the lane's thread (waits while it is busy with the previous one).
    func submit(_ job: Job) { inbox.push(job) }

    /// Sets every item on this lane's connection, on the calling thread; returns the failures.
    func run(batch: SinkBatch, items: [(index: Int, key: [UInt8])], ttl: Int) -> [DeliveryFailure] {
        guard !items.isEmpty else { return [] }
        return connection.withLock { c in
            items.compactMap { item in
                c.set(key: item.key, value: batch.payload(item.index), ttl: ttl)
                    .map { DeliveryFailure(index: item.index, reason: $0.reason, retry: $0.retry) }
            }
        }
    }

    /// Stops the lane's thread once its inbox is empty.
    func close() {
        inbox.close()
        if threaded { stopped.wait() }
    }
}
