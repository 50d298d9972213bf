import SluiceCore
import SluiceSpec

/// Event time at a source that feeds stateful transforms: reads each event's time, keeps the
/// largest time seen per input (per Kafka partition) and stamps every batch with each event's time,
/// the watermark of its input just before it (to judge lateness exactly, however events are
/// batched) and the source's watermark after the batch. Used only by the source's own thread.
/// One input of a source with a watermark of its own: a Kafka partition, or the whole source.
struct SourceInput: Hashable, Sendable {
    var topic: String?
    var partition: Int32
    static let whole = SourceInput(topic: nil, partition: -1)
}

final class SourceTiming {
    private let index: Int
    private let spec: EventTimeSpec
    private let path: [UInt8]?
    private let json: Bool
    private let board: WatermarkBoard
    private let stop: StopFlag
    /// Largest time seen and last arrival (processing ms), per input.
    private var maxSeen: [SourceInput: Int64] = [:]
    private var lastArrival: [SourceInput: Int64] = [:]
    /// Assigned inputs that have sent nothing yet, with when they were first seen assigned.
    private var waitingSince: [SourceInput: Int64] = [:]
    private let inputs: (@Sendable () -> [SourceInput]?)?
    /// The watermark after the last batch stamped.
    private var lastWatermark = EventTime.missing

    init(index: Int, spec: EventTimeSpec, format: DataFormat, board: WatermarkBoard, stop: StopFlag,
         inputs: (@Sendable () -> [SourceInput]?)? = nil) {
        self.inputs = inputs
        self.index = index
        self.spec = spec
        self.path = spec.field.map { Array($0.joined(separator: ".").utf8) }
        self.json = format == .json
        self.board = board
        self.stop = stop
    }

    func stamp(_ batch: inout Batch) {
        let now = WatermarkBoard.now()
        batch.times.reserveCapacity(batch.events.count)
        batch.watermarksBefore.reserveCapacity(batch.events.count)
        // Consecutive events mostly share an input: keep its largest time in a local and write it
        // back when the input changes (no dictionary lookups per event).
        var input: SourceInput? = nil
        var seen: Int64? = nil
        for event in batch.events {
            let this = event.meta?.partition.map { SourceInput(topic: event.meta?.topic, partition: $0) } ?? .whole
            if this != input {
                if let input {
                    if let seen { maxSeen[input] = seen }
                    lastArrival[input] = now
                }
                input = this
                seen = maxSeen[this]
            }
            var time: Int64? = nil
            if let path {
                if json { time = event.bytes.withUnsafeBytes { EventTime.read($0, path: path) } }
            } else {
                time = event.meta?.timestamp ?? now
            }
            batch.watermarksBefore.append(seen.map { $0 &- spec.lateness } ?? EventTime.missing)
            if let t = time {
                batch.times.append(t)
                seen = max(seen ?? t, t)
            } else {
                batch.times.append(EventTime.missing)
            }
        }
        if let input {
            if let seen { maxSeen[input] = seen }
            lastArrival[input] = now
        }
        batch.watermark = watermark(now: now)
        lastWatermark = batch.watermark
        board.post(index, watermark: batch.watermark)
    }

    /// Minimum over the inputs that sent something within `idle` (all of them if none did). An
    /// assigned input that has sent nothing holds the watermark back until it has been silent
    /// for `idle`.
    private func watermark(now: Int64) -> Int64 {
        if let assigned = inputs?() {
            for a in assigned where maxSeen[a] == nil {
                let since = waitingSince[a] ?? now
                waitingSince[a] = since
                if now - since <= spec.idle { return EventTime.missing }
            }
        }
        var active = Int64.max
        var any = Int64.min
        for (p, m) in maxSeen {
            let w = m &- spec.lateness
            any = max(any, w)
            if now - (lastArrival[p] ?? now) <= spec.idle { active = min(active, w) }
        }
        if maxSeen.isEmpty { return EventTime.missing }
        return active == Int64.max ? any : active
    }

    /// Pauses while this source (its watermark after the last batch stamped) runs more than
    /// `max_drift` ahead of a peer. Called before the next batch is numbered, so a checkpoint
    /// barrier can still be taken while the source waits (it is not stuck behind the paused batch).
    func holdBack() {
        board.waitWhileAhead(index, watermark: lastWatermark, stop: stop)
    }

    /// True while this source runs more than `max_drift` ahead of a peer (the non-blocking `holdBack`).
    func isAhead() -> Bool { board.drift(index, watermark: lastWatermark) > 0 }

    func setBusy(_ busy: Bool) { board.setBusy(index, busy) }

    /// The largest time seen per input, for a checkpoint.
    func marks() -> [InputMark] {
        maxSeen.map { InputMark(topic: $0.key.topic, partition: $0.key.partition, maxSeen: $0.value) }
            .sorted { ($0.topic ?? "", $0.partition) < ($1.topic ?? "", $1.partition) }
    }

    /// Resumes with a checkpoint's largest times (so lateness is judged as in an uninterrupted run).
    func restore(_ marks: [InputMark]) {
        let now = WatermarkBoard.now()
        for m in marks {
            let input = SourceInput(topic: m.topic, partition: m.partition)
            maxSeen[input] = m.maxSeen
            lastArrival[input] = now
        }
    }

    func finish() { board.finish(index) }
}
