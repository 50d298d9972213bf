import SluiceCore

/// Barrier alignment for one keyed stage worker (Flink's aligned checkpoints), as a state machine
/// that returns actions. When the first channel delivers barrier N, that channel is held: its later
/// batches wait here until every other channel has delivered barrier N or ended (sent the +infinity
/// watermark). Then the worker snapshots (everything before the barrier on every channel is in its
/// state, nothing after it) and the held batches are let through, in arrival order.
/// Memory held is what the faster channels send while the slower ones reach the barrier.
struct BarrierAligner {
    enum Action {
        /// Handle this batch now (its barrier, if any, is already accounted for).
        case process(KeyedBatch)
        /// Every channel is past barrier N: snapshot, then pass the barrier on.
        case snapshot(UInt64)
    }

    private let channels: Set<Channel>
    private var ended: Set<Channel> = []
    private var arrived: Set<Channel> = []
    private var aligning: UInt64?
    private var done: UInt64 = 0
    private var held: [KeyedBatch] = []

    init(channels: [Channel]) { self.channels = Set(channels) }

    /// Batches held back right now.
    var heldCount: Int { held.count }

    mutating func receive(_ batch: KeyedBatch) -> [Action] {
        var out: [Action] = []
        take(batch, &out)
        return out
    }

    private mutating func take(_ batch: KeyedBatch, _ out: inout [Action]) {
        guard channels.contains(batch.channel) else {   // a wake-up, not data
            out.append(.process(batch))
            return
        }
        if aligning != nil, arrived.contains(batch.channel) {
            held.append(batch)
            return
        }
        if batch.barrier > 0 {
            guard batch.barrier > done else { return }   // from a channel that had ended: already taken
            aligning = aligning ?? batch.barrier
            arrived.insert(batch.channel)
        } else {
            if batch.watermark == EventTime.infinity { ended.insert(batch.channel) }
            out.append(.process(batch))
        }
        completeIfAligned(&out)
    }

    private mutating func completeIfAligned(_ out: inout [Action]) {
        guard let id = aligning, channels.allSatisfy({ arrived.contains($0) || ended.contains($0) }) else { return }
        out.append(.snapshot(id))
        done = id
        aligning = nil
        arrived = []
        let release = held
        held = []
        for b in release { take(b, &out) }
    }
}
