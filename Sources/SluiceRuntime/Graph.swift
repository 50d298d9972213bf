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
            let kind: String
            switch s.kind {
            case .file: kind = "file"
            case .stdin: kind = "stdin"
            case .generate: kind = "generate"
            case .kafka(let k): kind = "kafka " + k.topics.joined(separator: ",")
            }
            lines.append("  \(id(s.name))[/\(label(s.name, kind))/]")
        }
        for t in spec.transforms {
            let kind: String
            switch t.kind {
            case .filter(.match): kind = "filter match"
            case .filter(.udf(let ref)): kind = "filter \(ref)"
            case .filter(.lua): kind = "filter lua"
            case .map(let ref): kind = "map \(ref)"
            case .flatMap(let ref): kind = "flat_map \(ref)"
            case .project: kind = "project"
            case .join: kind = "join"
            case .dedup: kind = "dedup"
            case .aggregate: kind = "aggregate"
            }
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
            let kind: String
            switch s.kind {
            case .file: kind = "file"
            case .stdout: kind = "stdout"
            case .stderr: kind = "stderr"
            case .kafka(let k): kind = "kafka " + k.topic
            case .http(let h): kind = "http " + h.url.replacingOccurrences(of: "\"", with: "#quot;")
            case .memcached(let m): kind = "memcached " + m.key.replacingOccurrences(of: "\"", with: "#quot;")
            }
            lines.append("  \(id(s.name))[(\(label(s.name, kind)))]")
            let arrow = s.when == nil ? "-->" : "-->|when|"
            for f in s.from { lines.append("  \(id(f)) \(arrow) \(id(s.name))") }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
