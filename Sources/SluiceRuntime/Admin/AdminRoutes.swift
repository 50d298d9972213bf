import Synchronization
import SluiceCore

/// What the admin endpoint answers. Reads the pipeline's live counters; never blocks the event path.
struct AdminRoutes: Sendable {
    let pipeline: String
    let stats: PipelineStats
    let operators: OperatorMetrics
    let sinks: [SinkRunner]
    let reloader: Reloader?
    let phase: PipelinePhase
    var lookups: LookupRegistry? = nil
    /// `GET /topology` (and the live page drawn from it).
    var topology: TopologyReport? = nil
    /// `GET /tap/COMPONENT`.
    var taps: TapPoints? = nil
    /// `settings.checkpoint`: checkpoints written, failed and the last one's figures in `/metrics`.
    var checkpoints: CheckpointCoordinator? = nil

    func respond(method: String, path: String) -> AdminServer.Response {
        respond(AdminServer.Request(method: method, path: path))
    }

    func respond(_ request: AdminServer.Request) -> AdminServer.Response {
        let method = request.method, path = request.path
        if path.hasPrefix("/tap/"), let taps {
            guard method == "GET" else { return AdminServer.Response(status: 405, body: "method not allowed\n") }
            return TapRoute(taps: taps, phase: phase).respond(component: String(path.dropFirst(5)), query: request.query)
        }
        switch (method, path) {
        case ("GET", "/"):
            return AdminServer.Response(status: 200, contentType: "text/html; charset=utf-8", body: AdminPage.html)
        case ("GET", "/topology"):
            guard let topology else { return AdminServer.Response(status: 404, body: "no topology\n") }
            return AdminServer.Response(status: 200, contentType: "application/json", body: topology.json())
        case ("GET", "/metrics"):
            return AdminServer.Response(status: 200, contentType: "text/plain; version=0.0.4", body: metrics())
        case ("GET", "/health"):
            return AdminServer.Response(status: 200, body: "ok\n")
        case ("GET", "/ready"):
            let detail = readiness()
            return AdminServer.Response(status: phase.current == .running ? 200 : 503, body: detail)
        case ("POST", "/reload"):
            guard let reloader else { return AdminServer.Response(status: 404, body: "hot reload is off (udfs.reload: off) or the pipeline has no Lua\n") }
            reloader.requestReload()
            return AdminServer.Response(status: 202, body: "reload requested\n")
        case (_, "/"), (_, "/topology"), (_, "/metrics"), (_, "/health"), (_, "/ready"), (_, "/reload"):
            return AdminServer.Response(status: 405, body: "method not allowed\n")
        default:
            return AdminServer.Response(status: 404, body: "not found; try / /topology /tap/COMPONENT /metrics /health /ready POST /reload\n")
        }
    }

    private func readiness() -> String {
        var lines = ["phase: \(phase.current.rawValue)"]
        if let reloader {
            lines.append("udf version: \(reloader.live.current.number)")
            if let e = reloader.lastError { lines.append("last reload error: \(e)") }
        }
        lines += lookups?.readiness ?? []
        for sink in sinks { lines.append("sink \(sink.name) queued: \(sink.queue.currentWeight)/\(sink.queue.capacity)") }
        for (name, f) in operators.totals {
            let w = f.gauges.watermark == EventTime.missing ? "none yet" : String(f.gauges.watermark)
            lines.append("operator \(name): \(f.gauges.keys) keys, \(f.gauges.stateBytes) state bytes, watermark \(w), late \(f.late)"
                         + (f.stateFull > 0 ? ", STATE FULL: \(f.stateFull) event(s) dead-lettered state_full" : ""))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Prometheus text format.
    func metrics() -> String {
        var out: [String] = []
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, Double)]) {
            out.append("# HELP \(name) \(help)")
            out.append("# TYPE \(name) \(type)")
            // Int64(exactly:) is nil past ±2^63 (where Int64(v) would trap): those print as floats.
            for (labels, v) in samples { out.append("\(name)\(labels) \(Int64(exactly: v).map { String($0) } ?? String(v))") }
        }
        let p = "pipeline=\"\(escape(pipeline))\""
        let counts = stats.snapshot.sorted { $0.key < $1.key }
        func perComponent(_ count: KeyPath<ComponentCounts, Int>) -> [(String, Double)] {
            counts.map { ("{\(p),component=\"\(escape($0.key))\"}", Double($0.value[keyPath: count])) }
        }
        family("sluice_events_received_total", "counter", "Events received by a component.", perComponent(\.received))
        family("sluice_events_emitted_total", "counter", "Events a component passed on (sinks: written).", perComponent(\.emitted))
        family("sluice_events_dead_lettered_total", "counter", "Events a component sent to the dead letter sink.",
               perComponent(\.deadLettered))
        family("sluice_events_dropped_total", "counter", "Events a sink dropped (when_full: drop_newest).", perComponent(\.dropped))
        family("sluice_sink_queue_events", "gauge", "Events waiting in a sink's queue (a sink that is behind).",
               sinks.map { ("{\(p),sink=\"\(escape($0.name))\"}", Double($0.queue.currentWeight)) })
        family("sluice_sink_queue_capacity", "gauge", "Capacity of a sink's queue, in events.",
               sinks.map { ("{\(p),sink=\"\(escape($0.name))\"}", Double($0.queue.capacity)) })
        family("sluice_udf_version", "gauge", "The UDF code version live (1 + published reloads).",
               [("{\(p)}", Double(reloader?.live.current.number ?? 1))])
        family("sluice_udf_reloads_rejected_total", "counter", "Reloads rejected (the running version was kept).",
               [("{\(p)}", Double(reloader?.counts.rejected ?? 0))])
        family("sluice_udf_counter_total", "counter", "Totals of ctx.count(metric, n) from UDFs.",
               stats.udfCounters.sorted { $0.key < $1.key }.map { ("{\(p),metric=\"\(escape($0.key))\"}", Double($0.value)) })
        if let checkpoints {
            let f = checkpoints.figures.withLock { $0 }
            family("sluice_checkpoints_written_total", "counter", "Checkpoints written (complete and durable).", [("{\(p)}", Double(f.written))])
            family("sluice_checkpoints_failed_total", "counter", "Checkpoints that could not be written (the previous one stays the latest).",
                   [("{\(p)}", Double(f.failed))])
            family("sluice_checkpoint_last_duration_ms", "gauge", "The last checkpoint, from its barriers' start to durable.",
                   [("{\(p)}", f.lastMillis.rounded())])
            family("sluice_checkpoint_last_state_bytes", "gauge", "State bytes in the last checkpoint.", [("{\(p)}", Double(f.lastBytes))])
        }
        let ops = operators.totals
        func perOperator(_ value: (OperatorMetrics.Figures) -> Double) -> [(String, Double)] {
            ops.map { ("{\(p),operator=\"\(escape($0.name))\"}", value($0.figures)) }
        }
        if !ops.isEmpty {
            family("sluice_operator_keys", "gauge", "Keys a stateful transform holds state for.", perOperator { Double($0.gauges.keys) })
            family("sluice_operator_state_bytes", "gauge", "Bytes of state a stateful transform holds.", perOperator { Double($0.gauges.stateBytes) })
            family("sluice_operator_watermark_ms", "gauge", "Watermark of a stateful transform (smallest over its workers; -1 before the first).",
                   perOperator { $0.gauges.watermark == EventTime.missing ? -1 : Double(min($0.gauges.watermark, 1 << 62)) })
            family("sluice_operator_late_events_total", "counter", "Events dead-lettered as late.", perOperator { Double($0.late) })
            family("sluice_operator_held_results", "gauge", "Held events (join) or open windows (aggregate).", perOperator { Double($0.gauges.held) })
            family("sluice_operator_timers_pending", "gauge", "Event-time timers waiting for the watermark.", perOperator { Double($0.gauges.timers) })
            family("sluice_operator_deduplicated_total", "counter", "Events dropped as duplicates (dedup).", perOperator { Double($0.deduplicated) })
            family("sluice_operator_state_full_total", "counter", "Events dead-lettered because the state limit was reached.", perOperator { Double($0.stateFull) })
        }
        out += lookups?.metrics(pipelineLabel: p, escape: escape) ?? []
        return out.joined(separator: "\n") + "\n"
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }
}

/// Where the pipeline is in its life, for `/ready`.
final class PipelinePhase: Sendable {
    enum Phase: String, Sendable { case starting, running, draining, stopped }
    private let value = Mutex(Phase.starting)
    var current: Phase { value.withLock { $0 } }
    func set(_ p: Phase) { value.withLock { $0 = p } }
}
