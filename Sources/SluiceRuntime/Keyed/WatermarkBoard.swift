import Foundation
import Synchronization
import SluiceCore

/// The watermark of every source, shared by the source threads (which post theirs and pause when
/// they run more than `max_drift` ahead of a peer) and the keyed stages (which skip idle sources).
/// A source is idle when it has neither read nor waited for room for longer than its `idle` time:
/// idleness is judged on activity, so a source paused by backpressure is never idle.
final class WatermarkBoard: Sendable {
    private struct Entry {
        var watermark = EventTime.missing
        var lastActivity: Int64 = 0
        var busy = false
        var finished = false
        var idle = false
    }

    private let entries: Mutex<[Entry]>
    private let idleAfter: [Int64]
    /// For each source, the sources it must not run ahead of (they feed a common operator).
    private let peers: [[Int]]
    private let maxDrift: Int64

    init(idleAfter: [Int64], peers: [[Int]], maxDrift: Int64) {
        let now = Self.now()
        entries = Mutex(Array(repeating: Entry(lastActivity: now), count: idleAfter.count))
        self.idleAfter = idleAfter
        self.peers = peers
        self.maxDrift = maxDrift
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// The source read something and its watermark is now `watermark`.
    func post(_ source: Int, watermark: Int64) {
        let now = Self.now()
        entries.withLock {
            $0[source].watermark = max($0[source].watermark, watermark)
            $0[source].lastActivity = now
            $0[source].idle = false
        }
    }

    /// The source is blocked handing over a batch (or not): a busy source is never idle.
    func setBusy(_ source: Int, _ busy: Bool) {
        let now = Self.now()
        entries.withLock { $0[source].busy = busy; $0[source].lastActivity = now }
    }

    func finish(_ source: Int) {
        entries.withLock { $0[source].finished = true; $0[source].watermark = EventTime.infinity; $0[source].idle = false }
    }

    func isIdle(_ source: Int) -> Bool { entries.withLock { $0[source].idle } }

    /// Marks sources idle that have been inactive for their `idle` time; true if any changed.
    func markIdle() -> Bool {
        let now = Self.now()
        return entries.withLock { all in
            var changed = false
            for i in all.indices where !all[i].finished && !all[i].busy && !all[i].idle
                && now - all[i].lastActivity > idleAfter[i] {
                all[i].idle = true
                changed = true
            }
            return changed
        }
    }

    /// How far `watermark` of `source` runs ahead of its slowest active peer (0 when it does not).
    func drift(_ source: Int, watermark: Int64) -> Int64 {
        guard watermark != EventTime.missing, !peers[source].isEmpty else { return 0 }
        return entries.withLock { all in
            var slowest = Int64.max
            for p in peers[source] where !all[p].finished && !all[p].idle {
                slowest = min(slowest, all[p].watermark)
            }
            if slowest == Int64.max { return 0 }
            if slowest == EventTime.missing { return watermark > Int64.min / 2 ? Int64.max : 0 }
            let ahead = watermark.subtractingReportingOverflow(slowest)
            return ahead.overflow ? Int64.max : max(0, ahead.partialValue - maxDrift)
        }
    }

    /// Blocks while `source` is more than `max_drift` ahead of a peer (polling; the peers' posts
    /// move it on). Counts as activity, so the waiting source is not idle.
    func waitWhileAhead(_ source: Int, watermark: Int64, stop: StopFlag) {
        guard !peers[source].isEmpty, drift(source, watermark: watermark) > 0 else { return }
        setBusy(source, true)
        defer { setBusy(source, false) }
        var spins = 0
        while !stop.isSet, drift(source, watermark: watermark) > 0 {
            spins += 1
            usleep(spins < 100 ? 200 : 2_000)
        }
    }
}
