import Foundation
import DequeModule

/// A blocking multi-producer multi-consumer queue with a capacity measured in *weight*
/// (events, for queues of batches) and a budget in *bytes* (what the items hold), so that neither
/// many small events nor a few huge ones grow memory without bound. Used between sources, workers
/// and sinks.
/// Threads block on it; it is safe to share because every field is guarded by `condition`.
public final class BoundedQueue<Element: Sendable>: @unchecked Sendable {
    public let capacity: Int
    /// Bytes the waiting items may hold together.
    public let byteCapacity: Int
    private let condition = NSCondition()
    /// A deque, so a taken item is released at once (an array with a moving head kept up to a
    /// thousand taken batches alive, with the read buffers they point into).
    private var items = Deque<(Element, Int, Int)>()
    private var weight = 0
    private var bytes = 0
    private var closed = false

    public init(capacity: Int, byteCapacity: Int = .max) {
        self.capacity = max(1, capacity)
        self.byteCapacity = max(1, byteCapacity)
    }

    /// An item of weight `w` and `b` bytes does not fit now. An empty queue takes any item, so one
    /// heavier than the capacity cannot block forever.
    private func full(_ w: Int, _ b: Int) -> Bool {
        weight > 0 && (weight + w > capacity || b > byteCapacity - bytes)
    }

    /// Blocks while the queue is full. Returns false if the queue was closed.
    /// An item heavier than the capacity is accepted when the queue is empty, so it cannot block forever.
    @discardableResult
    public func push(_ item: Element, weight w: Int = 1, bytes b: Int = 0) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !closed && full(w, b) {
            condition.wait()
        }
        if closed { return false }
        append(item, w, b)
        return true
    }

    /// Waits up to `timeout` seconds for room. Returns false if it is still full then, or closed.
    public func push(_ item: Element, weight w: Int = 1, bytes b: Int = 0, timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !closed && full(w, b) {
            if !condition.wait(until: deadline) { break }
        }
        if closed || full(w, b) { return false }
        append(item, w, b)
        return true
    }

    /// Waits up to `timeout` seconds (0: not at all) until an item of weight `w` would fit. Another
    /// producer may take the room first; callers that must not lose their turn then `push` (blocking).
    public func waitForRoom(weight w: Int, bytes b: Int = 0, timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !closed && full(w, b) {
            if timeout <= 0 || !condition.wait(until: deadline) { break }
        }
        return !closed && !full(w, b)
    }

    /// Adds the item only if it fits now. Returns false when full or closed.
    public func offer(_ item: Element, weight w: Int = 1, bytes b: Int = 0) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if closed || full(w, b) { return false }
        append(item, w, b)
        return true
    }

    /// Blocks until an item is available. Returns nil once the queue is closed and empty.
    public func pop() -> Element? {
        pop(stamping: { () })?.0
    }

    /// Like `pop`, but waits at most `timeout` seconds: nil when nothing came by then (or closed and empty).
    public func pop(timeout: Double) -> Element? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !closed {
            if !condition.wait(until: deadline) { break }
        }
        guard let (item, w, b) = items.popFirst() else { return nil }
        weight -= w
        bytes -= b
        condition.broadcast()
        return item
    }

    /// Like `pop`, and runs `stamp` while the queue is locked: consumers that stamp what they take
    /// (with the live UDF version, say) get stamps in the order the items left the queue.
    public func pop<Stamp>(stamping stamp: () -> Stamp) -> (Element, Stamp)? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !closed {
            condition.wait()
        }
        guard let (item, w, b) = items.popFirst() else { return nil }
        weight -= w
        bytes -= b
        condition.broadcast()
        return (item, stamp())
    }

    /// No more pushes; consumers drain what is left, then get nil.
    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    /// Current total weight (events) waiting.
    public var currentWeight: Int {
        condition.lock(); defer { condition.unlock() }
        return weight
    }

    /// Current bytes waiting.
    public var currentBytes: Int {
        condition.lock(); defer { condition.unlock() }
        return bytes
    }

    private func append(_ item: Element, _ w: Int, _ b: Int) {
        items.append((item, w, b))
        weight += w
        bytes += b
        condition.broadcast()
    }
}
