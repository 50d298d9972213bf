import Foundation
import SluiceCore
import SluiceKafka

/// `GET /topology`: the topology with live figures, as one JSON object —
/// `nodes` (name, kind, type, stage, counters, rates, queue fill, operator state, Kafka lag),
/// `edges` (from, to, when), `stages`, and the UDF version. Reads counters only: never blocks the event path.
struct TopologyReport: Sendable {
    let pipeline: String
    let topology: Topology
    let stats: PipelineStats
    let rates: RateMeter
    let operators: OperatorMetrics
    let work: BoundedQueue<Batch>
    let inboxes: [[BoundedQueue<KeyedBatch>]]
    /// The sinks' runners, then the dead letter runner (`Topology.Queue.sink` indexes them).
    let sinks: [SinkRunner]
    let reloader: Reloader?
    let reloadMode: String
    /// Kafka consumers by source index.
    let kafka: [Int: KafkaConsumerClient]
    let phase: PipelinePhase

    func json() -> String {
        let counts = stats.snapshot
        let rate = rates.rates(counts)
        let ops = operators.totals
        var nodes: [JSONValue] = []
        for n in topology.nodes {
            let c = counts[n.name] ?? ComponentCounts()
            let r = rate[n.name] ?? RateMeter.Rate()
            var fields: [(String, JSONValue)] = [
                ("name", .string(n.name)), ("kind", .string(n.kind.rawValue)), ("type", .string(n.type)),
                ("stage", n.stage.map { .int(Int64($0)) } ?? .null),
                ("received", .int(Int64(c.received))), ("emitted", .int(Int64(c.emitted))),
                ("dead_lettered", .int(Int64(c.deadLettered))), ("dropped", .int(Int64(c.dropped))),
                ("in_per_s", .double(Self.round(r.inPerSecond))), ("out_per_s", .double(Self.round(r.outPerSecond))),
                ("queue", queue(n.queue)),
            ]
            if let o = n.op, o < ops.count { fields.append(("operator", Self.operatorFigures(ops[o].figures))) }
            if let s = n.source, let client = kafka[s] { fields.append(("kafka", Self.kafkaFigures(client.stats))) }
            nodes.append(.object(fields))
        }
        let edges: [JSONValue] = topology.edges.map {
            .object([("from", .string($0.from)), ("to", .string($0.to)), ("when", .bool($0.when))])
        }
        let stages: [JSONValue] = topology.stages.map {
            .object([("stage", .int(Int64($0.index))), ("name", .string($0.name)), ("parallelism", .int(Int64($0.parallelism)))])
        }
        let udf: JSONValue = .object([
            ("version", .int(Int64(reloader?.live.current.number ?? 1))),
            ("reload", .string(reloadMode)),
            ("last_reload_error", reloader?.lastError.map(JSONValue.string) ?? .null),
            ("reloads_rejected", .int(Int64(reloader?.counts.rejected ?? 0))),
        ])
        let root: JSONValue = .object([
            ("pipeline", .string(pipeline)), ("phase", .string(phase.current.rawValue)),
            ("time_ms", .int(Int64(Date().timeIntervalSince1970 * 1000))),
            ("udf", udf), ("stages", .array(stages)), ("nodes", .array(nodes)), ("edges", .array(edges)),
        ])
        return root.jsonText + "\n"
    }

    /// Used and capacity of the queue a component reads, and how full it is (0...1; for a stage
    /// with several workers, its fullest inbox).
    private func queue(_ q: Topology.Queue) -> JSONValue {
        func value(used: Int, capacity: Int, fill: Double, unit: String) -> JSONValue {
            .object([("used", .int(Int64(used))), ("capacity", .int(Int64(capacity))),
                     ("fill", .double(Self.round(min(1, fill), places: 3))), ("unit", .string(unit))])
        }
        switch q {
        case .none:
            return .null
        case .work:
            let used = work.currentWeight
            return value(used: used, capacity: work.capacity, fill: Double(used) / Double(work.capacity), unit: "batches")
        case .inbox(let op):
            guard op < inboxes.count else { return .null }
            let lanes = inboxes[op].map { ($0.currentWeight, $0.capacity) }
            let fill = lanes.map { Double($0.0) / Double($0.1) }.max() ?? 0
            return value(used: lanes.reduce(0) { $0 + $1.0 }, capacity: lanes.reduce(0) { $0 + $1.1 }, fill: fill, unit: "events")
        case .sink(let i):
            guard i < sinks.count else { return .null }
            let used = sinks[i].queue.currentWeight, capacity = sinks[i].queue.capacity
            return value(used: used, capacity: capacity, fill: Double(used) / Double(capacity), unit: "events")
        }
    }

    private static func operatorFigures(_ f: OperatorMetrics.Figures) -> JSONValue {
        let w = f.gauges.watermark
        return .object([
            ("keys", .int(Int64(f.gauges.keys))), ("state_bytes", .int(Int64(f.gauges.stateBytes))),
            ("watermark_ms", w == EventTime.missing ? .null : .int(min(w, Int64(1) << 62))),
            ("late", .int(Int64(f.late))), ("held", .int(Int64(f.gauges.held))), ("timers", .int(Int64(f.gauges.timers))),
            ("deduplicated", .int(Int64(f.deduplicated))), ("state_full", .int(Int64(f.stateFull))),
        ])
    }

    private static func kafkaFigures(_ s: KafkaConsumerStats) -> JSONValue {
        func optional(_ v: Int64?) -> JSONValue { v.map { .int($0) } ?? .null }
        let partitions: [JSONValue] = s.lag.map {
            .object([("topic", .string($0.topic)), ("partition", .int(Int64($0.partition))), ("high", optional($0.high)),
                     ("committed", optional($0.committed)), ("position", optional($0.position)), ("lag", optional($0.lag))])
        }
        return .object([("paused", .bool(s.paused)), ("assigned", .int(Int64(s.assigned))), ("partitions", .array(partitions))])
    }

    private static func round(_ v: Double, places: Int = 1) -> Double {
        let m = places == 1 ? 10.0 : 1000.0
        return (v * m).rounded() / m
    }
}
