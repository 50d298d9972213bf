import Dispatch
import Synchronization

/// Sampling points for `GET /tap/COMPONENT`: one slot per component (sources, transforms, sinks and
/// the dead letter sink), indexed by name.
///
/// The event path pays one relaxed load of a process-wide atomic per event and node
/// (`TapPoints.anyWaiting`, no reference counting) while no tap is open. Only while a reader waits on a component, and its slot is free, does the event path copy one
/// event into that slot; otherwise it does nothing. A slow (or stalled) reader therefore loses
/// samples and never slows, blocks or buffers for the pipeline.
final class TapPoints: Sendable {
    let names: [String]
    let slots: [TapSlot]
    /// Slots armed now (a reader waits and the slot is empty), over every pipeline of the process:
    /// a global, so the event path checks it without touching (and retaining) a `TapPoints`.
    private static let armed = Atomic<Int>(0)
    private let index: [String: Int]

    init(names: [String]) {
        self.names = names
        var index: [String: Int] = [:]
        for (i, n) in names.enumerated() where index[n] == nil { index[n] = i }
        self.index = index
        slots = names.map { _ in TapSlot() }
    }

    /// True while some reader waits for an event: the only cost on the event path when none does.
    @inline(__always) static var anyWaiting: Bool { armed.load(ordering: .relaxed) > 0 }

    func slot(named name: String) -> Int? { index[name] }

    /// True when slot `i` wants an event now.
    @inline(__always) func isWaiting(_ i: Int) -> Bool { slots[i].state.load(ordering: .relaxed) == TapSlot.armed }

    /// Fills slot `i` with `make()` if a reader waits on it and no other thread got there first.
    /// `make` returns the event's bytes (nil: nothing to sample, the slot stays armed).
    @inline(__always) func offer(_ i: Int, _ make: () -> [UInt8]?) {
        guard i < slots.count else { return }
        let slot = slots[i]
        guard slot.state.compareExchange(expected: TapSlot.armed, desired: TapSlot.filling, ordering: .acquiring).exchanged else { return }
        guard let bytes = make() else {
            slot.state.store(TapSlot.armed, ordering: .releasing)
            return
        }
        Self.armed.subtract(1, ordering: .relaxed)
        slot.event.withLock { $0 = bytes }
        slot.state.store(TapSlot.full, ordering: .releasing)
        slot.filled.signal()
    }

    /// Takes the reader's place on slot `i`; false when another reader has it (one reader per component).
    func open(_ i: Int) -> Bool {
        slots[i].reader.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    func close(_ i: Int) { slots[i].reader.store(false, ordering: .releasing) }

    /// Waits for the next sampled event of slot `i` (the caller opened it). Gives up when `cancelled()`
    /// returns true (checked every 200 ms) and returns nil.
    func next(_ i: Int, cancelled: () -> Bool) -> [UInt8]? {
        let slot = slots[i]
        slot.state.store(TapSlot.armed, ordering: .releasing)
        Self.armed.add(1, ordering: .relaxed)
        while true {
            if slot.filled.wait(timeout: .now() + .milliseconds(200)) == .success { return take(slot) }
            guard cancelled() else { continue }
            // Disarm, unless the event path claimed the slot a moment ago: then its event follows at once.
            while true {
                if slot.state.compareExchange(expected: TapSlot.armed, desired: TapSlot.idle, ordering: .acquiringAndReleasing).exchanged {
                    Self.armed.subtract(1, ordering: .relaxed)
                    return nil
                }
                if slot.filled.wait(timeout: .now() + .milliseconds(20)) == .success { return take(slot) }
            }
        }
    }

    private func take(_ slot: TapSlot) -> [UInt8]? {
        let bytes = slot.event.withLock { e -> [UInt8]? in
            defer { e = nil }
            return e
        }
        slot.state.store(TapSlot.idle, ordering: .releasing)
        return bytes
    }
}

/// One component's sampling slot: at most one event, one reader.
final class TapSlot: Sendable {
    static let idle = 0, armed = 1, filling = 2, full = 3
    let state = Atomic<Int>(TapSlot.idle)
    let reader = Atomic<Bool>(false)
    let event = Mutex<[UInt8]?>(nil)
    let filled = DispatchSemaphore(value: 0)
}
