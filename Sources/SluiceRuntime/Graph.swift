import Foundation
import SluiceSpec

/// Renders a pipeline's DAG as a Mermaid flowchart (`sluice graph`).
public enum MermaidGraph {
    public static func render(_ spec: PipelineSpec) -> String {
        var lines = ["flowchart LR"]
        func id(_ name: String) -> String {
            "n_" + String(name.unicodeScalars.map { $0.properties.isAlphabetic || ("0"..."9").contains($0) ? Character($0) : "_" })
        }
        func label(_ name: String, _ kind: String) -> String { "\"\(name)<br/><i>\(kind)</i>\"" }
        for s in spec.sources {
            let kind = ComponentLabels.source(s)
            lines.append("  \(id(s.name))[/\(label(s.name, kind))/]")
        }
        for t in spec.transforms {
            let kind = ComponentLabels.transform(t)
            lines.append("  \(id(t.name))[\(label(t.name, kind))]")
            for f in t.from { lines.append("  \(id(f)) --> \(id(t.name))") }
        }
        // Stages: the stateless prefix, then one per stateful transform with its parallelism.
        let workers = max(1, spec.settings.workers ?? ProcessInfo.processInfo.activeProcessorCount)
        let plan = Plan(spec, workers: workers)
        if !plan.operators.isEmpty {
            for (k, nodes) in plan.stageNodes.enumerated() {
                let title = k == 0 ? "stage 0: stateless, \(workers) workers"
                    : "stage \(k): \(plan.operators[k - 1].name), parallelism \(plan.operators[k - 1].parallelism)"
                lines.append("  subgraph stage_\(k)[\"\(title)\"]")
                for n in nodes { lines.append("    \(id(plan.nodes[n].name))") }
                lines.append("  end")
            }
        }
        for s in spec.sinks {
            // Quotes would end Mermaid's label string.
            let kind = ComponentLabels.sink(s).replacingOccurrences(of: "\"", with: "#quot;")
            lines.append("  \(id(s.name))[(\(label(s.name, kind)))]")
            let arrow = s.when == nil ? "-->" : "-->|when|"
            for f in s.from { lines.append("  \(id(f)) \(arrow) \(id(s.name))") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
