import SluiceCore

/// The watermark of one keyed stage worker: the minimum over its channels, skipping sources that
/// are idle (all idle: the largest). Never goes backwards.
struct WatermarkTracker: Sendable {
    private var index: [Channel: Int] = [:]
    private var marks: [Int64]
    private let channels: [Channel]
    private(set) var current = EventTime.missing   // set by `restore` too

    init(channels: [Channel]) {
        self.channels = channels
        for (i, c) in channels.enumerated() { index[c] = i }
        marks = Array(repeating: EventTime.missing, count: channels.count)
    }

    /// The watermark of channel `c` so far (events behind it are late).
    func mark(_ c: Channel) -> Int64 { index[c].map { marks[$0] } ?? EventTime.missing }

    mutating func update(_ c: Channel, _ watermark: Int64) {
        guard let i = index[c], watermark > marks[i] else { return }
        marks[i] = watermark
    }

    /// Recomputes the minimum; returns the new watermark if it moved forward.
    mutating func advance(board: WatermarkBoard) -> Int64? {
        guard !channels.isEmpty else { return nil }
        var active = Int64.max
        var all = Int64.min
        for (i, c) in channels.enumerated() {
            all = max(all, marks[i])
            if c.stage == 0 && board.isIdle(c.lane) { continue }
            active = min(active, marks[i])
        }
        let w = active == Int64.max ? all : active
        guard w > current else { return nil }
        current = w
        return w
    }
}

extension WatermarkTracker {
    /// Per-channel watermarks and the current one, for a checkpoint.
    func snapshot(into w: inout StateWriter) {
        w.count(channels.count)
        for (i, c) in channels.enumerated() {
            w.u32(UInt32(bitPattern: Int32(truncatingIfNeeded: c.stage))); w.u32(UInt32(truncatingIfNeeded: c.lane)); w.i64(marks[i])
        }
        w.i64(current)
    }

    /// Reads a checkpointed tracker; applies it when `apply` (same worker, same channels).
    mutating func restore(from r: inout StateReader, apply: Bool) throws(CheckpointError) {
        let n = try r.count(minItemBytes: 16)
        var saved: [(Channel, Int64)] = []
        for _ in 0..<n {
            let stage = Int(Int32(bitPattern: try r.u32())), lane = Int(try r.u32())
            saved.append((Channel(stage: stage, lane: lane), try r.i64()))
        }
        let cur = try r.i64()
        guard apply else { return }
        for (c, m) in saved { update(c, m) }
        current = max(current, cur)
    }
}
