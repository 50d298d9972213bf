import Foundation
import Synchronization
import SluiceCore
import SluiceSpec

/// Takes consistent checkpoints while events flow (Chandy-Lamport / Flink's asynchronous barrier
/// snapshots). Every `every`, checkpoint N starts: each source takes barrier N between two of its
/// batches (`SourceOutlet.barrier`), the barrier is published after every earlier batch of that source
/// (through the source's sequencer) to the keyed stages, which align on it and snapshot. Checkpoint N
/// is *complete* when every source and every stage worker is past barrier N and every sink has
/// written everything published before it: all of that holds epoch N's acknowledgement. Only then
/// is the file written (atomically) and Kafka offsets committed. One checkpoint is in flight at a
/// time; the file is encoded and written on the coordinator's own thread, not on a stage.
final class CheckpointCoordinator: Sendable {
    /// One checkpoint's epoch: everything published between barrier N-1 and barrier N holds `ack`.
    private final class Epoch: Sendable {
        let id: UInt64
        let ack: Acknowledgement
        let parts = Mutex<(sources: [Int: SourceCheckpoint], sections: [StateSection])>(([:], []))
        init(id: UInt64, ack: Acknowledgement) { self.id = id; self.ack = ack }
    }

    private struct State {
        var epochs: [UInt64: Epoch] = [:]
        /// The epoch new batches join.
        var current: UInt64
        var inFlight: UInt64?
        var startedAt: ContinuousClock.Instant?
        var completed: [UInt64] = []
        var lastWritten: UInt64 = 0
        var stopped = false
        var stopTriggers = false
    }

    let settings: CheckpointSettings
    let store: CheckpointStore
    private let pipeline: String
    private let participants: Int
    private let log: @Sendable (String, String) -> Void
    private let state: Mutex<State>
    private let wake = NSCondition()
    /// Set while restating after a rewind.
    let restatement: Restatement
    /// Figures for the log and the benchmark: checkpoints written and failed; of the last one, the
    /// time from its start to durable, its state bytes and the time spent encoding the state.
    let figures = Mutex<(written: Int, failed: Int, lastMillis: Double, lastBytes: Int, lastEncodeMillis: Double)>((0, 0, 0, 0, 0))
    private let encodeMillis = Mutex<[UInt64: Double]>([:])
    /// Encodes stage workers' snapshots off their threads, one at a time.
    private let encoder = DispatchQueue(label: "sluice-checkpoint-encoder", qos: .utility)

    /// How the coordinator reaches the running pipeline (set by `wire` before the run starts).
    struct Wiring: Sendable {
        /// Takes barrier `id` at every source; later batches join the epoch of `next`.
        var injectBarriers: @Sendable (_ id: UInt64, _ next: Acknowledgement) -> Void
        var headerInfo: @Sendable () -> (udfVersion: Int, udfHash: String, lookups: [String: String])
        /// A checkpoint is durable (Kafka sources commit its offsets).
        var onComplete: @Sendable (CheckpointHeader) -> Void
    }
    private let wiring = Mutex<Wiring?>(nil)

    func wire(_ w: Wiring) { wiring.withLock { $0 = w } }

    init(settings: CheckpointSettings, pipeline: String, sources: Int, lanes: Int,
         restatement: Restatement, log: @escaping @Sendable (String, String) -> Void) {
        self.settings = settings
        self.store = CheckpointStore(dir: settings.dir)
        self.pipeline = pipeline
        self.participants = sources + lanes
        self.log = log
        self.restatement = restatement
        let first = store.nextID()
        state = Mutex(State(current: first))
        let epoch = makeEpoch(first)
        state.withLock { $0.epochs[first] = epoch }
    }

    private func makeEpoch(_ id: UInt64) -> Epoch {
        let ack = Acknowledgement { [weak self] in self?.epochDone(id) }
        for _ in 0..<participants { ack.hold() }
        return Epoch(id: id, ack: ack)
    }

    /// The acknowledgement of the epoch sources and stage workers join at start.
    var firstAck: Acknowledgement { state.withLock { $0.epochs[$0.current]!.ack } }

    private func epoch(_ id: UInt64) -> Epoch? { state.withLock { $0.epochs[id] } }

    /// Source `s` is past barrier `id` (everything before it is published) at `position`.
    func sourcePassed(_ id: UInt64, source s: Int, position: SourceCheckpoint) {
        guard let e = epoch(id) else { return }
        e.parts.withLock { $0.sources[s] = position }
        e.ack.release()
    }

    /// A stage worker reached barrier `id` (aligned); `encode` writes its state, and runs on the
    /// encoder's thread. Returns the acknowledgement of the next epoch, for what the worker publishes next.
    func snapshotted(_ id: UInt64, op: String, lane: Int, encode: @escaping @Sendable () -> [UInt8]) -> Acknowledgement? {
        guard let e = epoch(id) else { return nil }
        let next = epoch(id + 1)?.ack
        encoder.async { [self] in
            let began = ContinuousClock.now
            let bytes = encode()
            let ms = Self.millis(ContinuousClock.now - began)
            encodeMillis.withLock { $0[id, default: 0] += ms }
            e.parts.withLock { $0.sections.append(StateSection(op: op, lane: lane, bytes: bytes)) }
            e.ack.release()
        }
        return next
    }

    private func epochDone(_ id: UInt64) {
        state.withLock { $0.completed.append(id) }
        wake.lock(); wake.broadcast(); wake.unlock()
    }

    /// Starts checkpoint `current` (the caller made sure none is in flight).
    private func begin() -> UInt64? {
        let started: (id: UInt64, next: Epoch)? = state.withLock { s in
            guard s.inFlight == nil, !s.stopped else { return nil }
            let id = s.current
            let next = makeEpoch(id + 1)
            s.epochs[id + 1] = next
            s.current = id + 1
            s.inFlight = id
            s.startedAt = .now
            return (id, next)
        }
        guard let started, let e = epoch(started.id) else { return nil }
        wiring.withLock { $0 }?.injectBarriers(started.id, started.next.ack)
        e.ack.release()   // the coordinator's own hold: every barrier is on its way
        return started.id
    }

    /// The coordinator's thread: starts a checkpoint every `every` and writes those that complete.
    func run() {
        var nextAt = ContinuousClock.now + .milliseconds(settings.every)
        while true {
            let (done, stop, trigger): ([UInt64], Bool, Bool) = state.withLock { s in
                let d = s.completed
                s.completed = []
                return (d, s.stopped, !s.stopTriggers && s.inFlight == nil && ContinuousClock.now >= nextAt)
            }
            for id in done { write(id) }
            if stop && done.isEmpty { return }
            if trigger {
                _ = begin()
                nextAt = ContinuousClock.now + .milliseconds(settings.every)
                continue
            }
            if !done.isEmpty { continue }
            wake.lock()
            let pending = state.withLock { !$0.completed.isEmpty || $0.stopped }
            if !pending { _ = wake.wait(until: Date(timeIntervalSinceNow: min(0.2, Double(settings.every) / 1000))) }
            wake.unlock()
        }
    }

    private func write(_ id: UInt64) {
        guard let e = epoch(id) else { return }
        let started = state.withLock { $0.startedAt }
        let (sources, sections) = e.parts.withLock { ($0.sources, $0.sections) }
        var positions = sources.keys.sorted().compactMap { sources[$0] }
        for i in positions.indices {
            if var f = positions[i].file {
                f.head = FileIdentity.headHash(path: f.path, offset: f.offset) ?? ""
                positions[i].file = f
            }
        }
        let w = wiring.withLock { $0 }
        let info = w?.headerInfo() ?? (udfVersion: 0, udfHash: "", lookups: [:])
        let label = restatement.label
        let header = CheckpointHeader(id: id, time: Int64(Date().timeIntervalSince1970 * 1000), pipeline: pipeline,
                                      udfVersion: info.udfVersion, udfHash: info.udfHash, lookups: info.lookups,
                                      sources: positions, restatement: label)
        let file = CheckpointFile(header: header, sections: sections.sorted { ($0.op, $0.lane) < ($1.op, $1.lane) })
        let t0 = ContinuousClock.now
        do {
            try store.write(file)
            store.prune(keep: settings.keep)
            let ms = Self.millis(ContinuousClock.now - (started ?? t0))
            let encoding = encodeMillis.withLock { $0.removeValue(forKey: id) ?? 0 }
            figures.withLock { $0.written += 1; $0.lastMillis = ms; $0.lastBytes = file.stateBytes; $0.lastEncodeMillis = encoding }
            log("debug", "checkpoint \(id) written: \(file.stateBytes) state bytes, \(String(format: "%.1f", ms)) ms from start to durable "
                + "(encoding the state \(String(format: "%.1f", encoding)) ms, off the stage workers)")
            w?.onComplete(header)
            endRestatementIfPast(positions)
        } catch {
            figures.withLock { $0.failed += 1 }
            log("error", "checkpoint \(id) could not be written: \(error); the previous one stays the latest")
        }
        state.withLock { s in
            s.epochs[id] = nil
            s.inFlight = nil
            s.lastWritten = max(s.lastWritten, id)
        }
        wake.lock(); wake.broadcast(); wake.unlock()
    }

    private func endRestatementIfPast(_ positions: [SourceCheckpoint]) {
        guard let ended = restatement.endIfPast(positions) else { return }
        store.clearRewind()
        log("info", "restatement \(ended) is complete: the sources are past where the rewind was made")
    }

    /// After the sources stopped or ended: takes one last checkpoint and waits (up to `timeout`
    /// seconds) until it is durable. Returns its id, or nil if it did not complete in time.
    func finalCheckpoint(timeout: Double) -> UInt64? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        state.withLock { $0.stopTriggers = true }
        wake.lock()
        while state.withLock({ $0.inFlight != nil }) && wake.wait(until: deadline) {}
        wake.unlock()
        guard let id = begin() else { return nil }
        wake.lock()
        while state.withLock({ $0.lastWritten < id }) && wake.wait(until: deadline) {}
        wake.unlock()
        return state.withLock { $0.lastWritten >= id } ? id : nil
    }

    /// Makes `run` return (after writing what completed).
    func stop() {
        state.withLock { $0.stopped = true }
        wake.lock(); wake.broadcast(); wake.unlock()
    }

    static func millis(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }
}
