import Foundation
import Synchronization

/// Events per second in and out of every component, from its counters: the difference between now
/// and a sample about a second old. The admin thread samples at least every 200 ms, so the rates
/// are over the last second whoever asks and however often.
final class RateMeter: Sendable {
    /// In and out rates of one component, events per second.
    struct Rate: Sendable, Equatable {
        var inPerSecond = 0.0
        var outPerSecond = 0.0
    }

    private struct Sample {
        var time: Double
        var counts: [String: ComponentCounts]
    }

    private let samples = Mutex<[Sample]>([])
    private let window: Double

    /// `window`: how far back the rate looks (seconds).
    init(window: Double = 1) { self.window = window }

    static func now() -> Double { Date.timeIntervalSinceReferenceDate }

    /// Records `counts` if the last sample is 200 ms old or more; forgets samples no longer needed.
    func observe(_ counts: [String: ComponentCounts], at time: Double = RateMeter.now()) {
        samples.withLock { all in
            if let last = all.last, time - last.time < 0.2 { return }
            all.append(Sample(time: time, counts: counts))
            // Keep the newest sample at least `window` old, and everything after it.
            if let keep = all.lastIndex(where: { time - $0.time >= window }), keep > 0 { all.removeFirst(keep) }
        }
    }

    /// Rates of every component in `counts` (taken at `time`), against the newest sample at least a
    /// window old (or the oldest there is). Zero before there is an older sample.
    func rates(_ counts: [String: ComponentCounts], at time: Double = RateMeter.now()) -> [String: Rate] {
        observe(counts, at: time)
        let base = samples.withLock { all in all.last(where: { time - $0.time >= window }) ?? all.first }
        guard let base, time - base.time > 0.05 else { return [:] }
        let dt = time - base.time
        var out: [String: Rate] = [:]
        for (name, c) in counts {
            let old = base.counts[name] ?? ComponentCounts()
            out[name] = Rate(inPerSecond: Double(max(0, c.received - old.received)) / dt,
                             outPerSecond: Double(max(0, c.emitted - old.emitted)) / dt)
        }
        return out
    }
}
