import Synchronization
import SluiceCore
import SluiceKafka

/// What a source hands its batches to: the bounded work queue, stamping each batch with the
/// source's next sequence number (and, when it feeds stateful transforms, event times and
/// watermarks). Batches are emitted by the source's own thread; with checkpoints on, the
/// checkpoint coordinator also takes a barrier from another thread (`barrier`), so the sequence
/// number, the position and the event-time state are kept under one lock, taken briefly per batch.
final class SourceOutlet: @unchecked Sendable {
    let source: Int
    private let work: BoundedQueue<Batch>
    /// Guarded by `cursor`'s lock (only touched inside `cursor.withLock`).
    private let timing: SourceTiming?
    private let cursor: Mutex<Cursor>

    /// Where the source stands after the batches numbered so far. Guarded by the lock.
    struct Cursor {
        var sequence: UInt64 = 0
        var events: Int64 = 0
        var mark: SourceMark?
        /// Kafka: next offset per partition.
        var kafka: [TopicPartition: Int64] = [:]
        /// With checkpoints: the epoch every new batch joins (held until the batch is written).
        var epoch: Acknowledgement?
    }

    /// Where a source sends events it rejects itself (a generator's failed calls); nil drops them.
    let deadLetters: (@Sendable ([DeadLetter]) -> Void)?

    init(source: Int, work: BoundedQueue<Batch>, timing: SourceTiming? = nil,
         deadLetters: (@Sendable ([DeadLetter]) -> Void)? = nil, restored: SourceCheckpoint? = nil, epoch: Acknowledgement? = nil) {
        self.source = source; self.work = work; self.timing = timing; self.deadLetters = deadLetters
        var c = Cursor()
        c.epoch = epoch
        if let r = restored {
            c.events = r.events
            if let f = r.file {
                c.mark = SourceMark(file: LineBatcher.Mark(offset: f.offset, line: f.line), identity: FileIdentity(device: f.device, inode: f.inode))
            }
            for k in r.kafka ?? [] { c.kafka[TopicPartition(topic: k.topic, partition: k.partition)] = k.offset }
            timing?.restore(r.inputs)
        }
        cursor = Mutex(c)
    }

    /// Numbers the batch, stamps its event times and records the position after it.
    private func reserve(_ batch: inout Batch, mark: SourceMark?) {
        let timing = timing
        cursor.withLock { c in
            batch.sequence = c.sequence
            c.sequence += 1
            timing?.stamp(&batch)
            c.events += Int64(batch.events.count)
            if let mark { c.mark = mark }
            if let e = c.epoch {
                for ev in batch.events {
                    if let m = ev.meta, let t = m.topic, let p = m.partition, let o = m.offset {
                        c.kafka[TopicPartition(topic: t, partition: p), default: 0] = max(c.kafka[TopicPartition(topic: t, partition: p)] ?? 0, o + 1)
                    }
                }
                if batch.acknowledgement == nil { e.hold(); batch.acknowledgement = e }
            }
        }
    }

    /// Blocks while the work queue is full (backpressure), and first while the source runs more
    /// than `max_drift` ahead of a peer (judged on its watermark after the previous batch).
    /// `mark`: where the source stands after these events.
    func emit(_ events: [Event], mark: SourceMark? = nil, acknowledgement: Acknowledgement? = nil) {
        guard !events.isEmpty else { return }
        timing?.holdBack()
        var batch = Batch(source: source, sequence: 0, events: events, acknowledgement: acknowledgement)
        reserve(&batch, mark: mark)
        timing?.setBusy(true)
        defer { timing?.setBusy(false) }
        _ = work.push(batch, bytes: batch.byteCount)
    }

    /// Hands the batch over if there is room within `wait` seconds; false means "still full, try again later".
    /// (A source that offers keeps its own batch; event times are stamped on the batch that goes.)
    /// `holdBack: false` (a consumer shared by several sources) refuses the batch instead of waiting
    /// while the source runs more than `max_drift` ahead of a peer.
    func offer(_ events: [Event], acknowledgement: Acknowledgement? = nil, wait: Double = 0, holdBack: Bool = true) -> Bool {
        guard !events.isEmpty else { return true }
        var batch = Batch(source: source, sequence: 0, events: events, acknowledgement: acknowledgement)
        if holdBack {
            timing?.holdBack()
        } else if let timing, timing.isAhead() {
            timing.setBusy(true)   // waiting for a peer counts as activity: not idle
            timing.setBusy(false)
            return false
        }
        timing?.setBusy(true)
        defer { timing?.setBusy(false) }
        let bytes = batch.byteCount
        guard work.waitForRoom(weight: 1, bytes: bytes, timeout: wait) else { return false }
        reserve(&batch, mark: nil)
        _ = work.push(batch, bytes: bytes)
        return true
    }

    /// Kafka partitions were revoked: later checkpoints hold no position for them until they are read
    /// again (a stale position from this ownership would acknowledge records of a later one).
    func forget(_ partitions: [TopicPartition]) {
        cursor.withLock { c in for p in partitions { c.kafka[p] = nil } }
    }

    /// Takes checkpoint barrier `id` between two batches: returns the sequence number it occupies
    /// (its place in the source's order) and the position after every batch numbered before it;
    /// later batches join `next`.
    func barrier(name: String, kind: String, path: String?, next: Acknowledgement?) -> (sequence: UInt64, position: SourceCheckpoint) {
        let timing = timing
        return cursor.withLock { c in
            let seq = c.sequence
            c.sequence += 1
            c.epoch = next
            var p = SourceCheckpoint(name: name, kind: kind, events: c.events, inputs: timing?.marks() ?? [])
            if let m = c.mark, let path {
                p.file = FilePosition(path: path, offset: m.file.offset, line: m.file.line,
                                      device: m.identity.device, inode: m.identity.inode, head: "")
            }
            if kind == "kafka" {
                p.kafka = c.kafka.map { KafkaPosition(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
                    .sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
            }
            return (seq, p)
        }
    }

    /// The source has ended (or stopped): its watermark becomes +infinity, so every window it
    /// holds open closes and every held result is emitted. `flush: false` (a stop with
    /// checkpoints on) keeps the state for the next start instead.
    func finish(flush: Bool = true) {
        guard let timing else { return }
        timing.finish()
        guard flush else { return }
        var batch = Batch(source: source, sequence: 0, events: [])
        cursor.withLock { c in
            batch.sequence = c.sequence
            c.sequence += 1
        }
        batch.watermark = EventTime.infinity
        _ = work.push(batch)
    }
}
