import SluiceRuntime
import SluiceSpec

/// The one-line report printed to stderr when a run ends.
enum RunSummary {
    static func line(pipeline spec: PipelineSpec, report: RunReport) -> String {
        let c = report.counts
        let read = spec.sources.reduce(0) { $0 + (c[$1.name]?.received ?? 0) }
        let sinks = spec.sinks.map { s -> String in
            let k = c[s.name] ?? ComponentCounts()
            return "\(s.name)=\(k.emitted)" + (k.dropped > 0 ? " (dropped \(k.dropped))" : "")
        }.joined(separator: " ")
        let dead = c[Pipeline.deadLetterName]?.received ?? 0
        let unwritten = dead - (c[Pipeline.deadLetterName]?.emitted ?? 0)
        var line = "sluice: \(spec.name): read \(read) events; wrote \(sinks); dead-lettered \(dead)"
        if unwritten > 0 { line += " (\(unwritten) not written: lost, unacknowledged)" }
        if spec.udfs.reload != .off { line += "; udf version \(report.udfVersion), \(report.reloadsRejected) reload(s) rejected" }
        for op in report.operators {
            var parts: [String] = []
            if op.late > 0 { parts.append("\(op.late) late") }
            if op.deduplicated > 0 { parts.append("\(op.deduplicated) duplicates dropped") }
            if op.stateFull > 0 { parts.append("\(op.stateFull) over the state limit") }
            if !parts.isEmpty { line += "; \(op.name): " + parts.joined(separator: ", ") }
        }
        return line
    }
}
