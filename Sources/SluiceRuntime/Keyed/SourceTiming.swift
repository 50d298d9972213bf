import SluiceCore
import SluiceSpec

/// Event time at a source that feeds stateful transforms: reads each event's time, keeps the
/// largest time seen per input (per Kafka partition) and stamps every batch with each event's time,
/// the watermark of its input just before it (to judge lateness exactly, however events are
/// batched) and the source's watermark after the batch. Used only by the source's own thread.
final class SourceTiming {
    private let index: Int
    private let spec: EventTimeSpec
    private let path: [UInt8]?
    private let json: Bool
    private let board: WatermarkBoard
    private let stop: StopFlag
    /// Largest time seen and last arrival (processing ms), per partition (-1 outside Kafka).
    private var maxSeen: [Int32: Int64] = [:]
    private var lastArrival: [Int32: Int64] = [:]

    init(index: Int, spec: EventTimeSpec, format: DataFormat, board: WatermarkBoard, stop: StopFlag) {
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
        for event in batch.events {
            let partition = event.meta?.partition ?? -1
            var time: Int64? = nil
            if let path {
                if json { time = event.bytes.withUnsafeBytes { EventTime.read($0, path: path) } }
            } else {
                time = event.meta?.timestamp ?? now
            }
            let seen = maxSeen[partition]
            batch.watermarksBefore.append(seen.map { $0 &- spec.lateness } ?? EventTime.missing)
            lastArrival[partition] = now
            if let t = time {
                batch.times.append(t)
                if seen == nil || t > seen! { maxSeen[partition] = t }
            } else {
                batch.times.append(EventTime.missing)
            }
        }
        batch.watermark = watermark(now: now)
        board.post(index, watermark: batch.watermark)
    }

    /// Minimum over the partitions that sent something within `idle` (all of them if none did).
    private func watermark(now: Int64) -> Int64 {
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

    /// Pauses while this source runs more than `max_drift` ahead of a peer.
    func holdBack(_ batch: Batch) {
        board.waitWhileAhead(index, watermark: batch.watermark, stop: stop)
    }

    func setBusy(_ busy: Bool) { board.setBusy(index, busy) }

    func finish() { board.finish(index) }
}
