import Synchronization

/// Event counts per component, merged from workers and sinks once per batch.
public struct ComponentCounts: Sendable, Equatable {
    public var received = 0
    public var emitted = 0
    public var deadLettered = 0
    public var dropped = 0
    public init() {}
}

/// Shared counters for a running pipeline. Reported at shutdown and read by tests.
public final class PipelineStats: Sendable {
    private let counts = Mutex<[String: ComponentCounts]>([:])
    private let luaCounters = Mutex<[String: Int64]>([:])

    public init() {}

    func merge(_ local: [String: ComponentCounts]) {
        counts.withLock { all in
            for (name, c) in local {
                var t = all[name] ?? ComponentCounts()
                t.received += c.received; t.emitted += c.emitted
                t.deadLettered += c.deadLettered; t.dropped += c.dropped
                all[name] = t
            }
        }
    }

    func add(_ name: String, _ update: (inout ComponentCounts) -> Void) {
        counts.withLock { all in
            var t = all[name] ?? ComponentCounts()
            update(&t)
            all[name] = t
        }
    }

    func mergeLuaCounters(_ pairs: [(String, Int64)]) {
        guard !pairs.isEmpty else { return }
        luaCounters.withLock { all in for (k, v) in pairs { all[k, default: 0] += v } }
    }

    /// A snapshot of every component's counts.
    public var snapshot: [String: ComponentCounts] { counts.withLock { $0 } }
    /// Totals of `ctx.count(metric, n)` calls from UDFs.
    public var udfCounters: [String: Int64] { luaCounters.withLock { $0 } }
}
