import Synchronization
import SluiceCore

/// Event counts per component, merged from workers and sinks once per batch.
public struct ComponentCounts: Sendable, Equatable {
    public var received = 0
    public var emitted = 0
    public var deadLettered = 0
    public var dropped = 0
    public init() {}

    /// Adds every field of `other`, clamping at `Int.max`/`Int.min`.
    mutating func saturatingAdd(_ other: ComponentCounts) {
        received.saturatingIncrement(by: other.received)
        emitted.saturatingIncrement(by: other.emitted)
        deadLettered.saturatingIncrement(by: other.deadLettered)
        dropped.saturatingIncrement(by: other.dropped)
    }
}

/// Shared counters for a running pipeline. Reported at shutdown and read by tests.
public final class PipelineStats: Sendable {
    /// At most this many distinct `ctx.count` metric names are kept; later new names are summed
    /// into `droppedUDFCounterName`, so a UDF counting by event id cannot grow memory without bound.
    public static let maxUDFCounterNames = 1_000
    /// The one counter that collects increments of metric names past `maxUDFCounterNames`.
    public static let droppedUDFCounterName = "sluice.dropped_names"

    private let counts = Mutex<[String: ComponentCounts]>([:])
    private let luaCounters = Mutex<[String: Int64]>([:])

    public init() {}

    /// Adds per-batch counts to the totals, saturating at `Int.max` (never trapping).
    func merge(_ local: [String: ComponentCounts]) {
        counts.withLock { all in
            for (name, c) in local { all[name, default: ComponentCounts()].saturatingAdd(c) }
        }
    }

    /// Adds to one component's totals: `update` fills in a zero delta (`$0.received += n`),
    /// which is then added with saturation, so callers never do arithmetic on the totals themselves.
    func add(_ name: String, _ update: (inout ComponentCounts) -> Void) {
        var delta = ComponentCounts()
        update(&delta)
        counts.withLock { all in all[name, default: ComponentCounts()].saturatingAdd(delta) }
    }

    func mergeLuaCounters(_ pairs: [(String, Int64)]) {
        guard !pairs.isEmpty else { return }
        luaCounters.withLock { all in
            for (k, v) in pairs {
                // The cap counts user names only; the dropped-names counter comes on top of it.
                let known = all[k] != nil
                let userNames = all.count - (all[Self.droppedUDFCounterName] == nil ? 0 : 1)
                let name = known || userNames < Self.maxUDFCounterNames ? k : Self.droppedUDFCounterName
                all[name, default: 0].saturatingIncrement(by: v)
            }
        }
    }

    /// A snapshot of every component's counts.
    public var snapshot: [String: ComponentCounts] { counts.withLock { $0 } }
    /// Totals of `ctx.count(metric, n)` calls from UDFs.
    public var udfCounters: [String: Int64] { luaCounters.withLock { $0 } }
}
