/// The result of a finished run.
public struct RunReport: Sendable {
    public var counts: [String: ComponentCounts]
    public var udfCounters: [String: Int64]
    /// With `captureSinks`: every sink's events, in order. The dead letter records are under `dead_letter`.
    public var captured: [String: [[UInt8]]]
    /// Problems that stopped a source or a sink early.
    public var errors: [String]
    /// The UDF version live at the end (1 + reloads published) and reloads rejected.
    public var udfVersion: Int
    public var reloadsRejected: Int
    /// Stateful transforms at the end of the run (state left, late events, duplicates dropped).
    public var operators: [OperatorSummary] = []
}

/// What a stateful transform did in a run.
public struct OperatorSummary: Sendable {
    public var name: String
    public var keys: Int
    public var stateBytes: Int
    public var late: Int
    public var deduplicated: Int
    public var stateFull: Int
    init(name: String, figures: OperatorMetrics.Figures) {
        self.name = name
        keys = figures.gauges.keys; stateBytes = figures.gauges.stateBytes
        late = figures.late; deduplicated = figures.deduplicated; stateFull = figures.stateFull
    }
}

/// A pipeline could not be built.
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
