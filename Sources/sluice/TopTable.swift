import Foundation

/// The table `sluice top` prints: one row per component with its rates, queue fill, dead letters
/// and drops, and what is special about it (operator state and watermark, Kafka lag).
enum TopTable {
    static func render(_ t: TopologySnapshot, width: Int = 120) -> String {
        var lines = ["\(t.pipeline)  phase \(t.phase)  udf version \(t.udf.version)"
                     + (t.udf.last_reload_error.map { "  last reload error: \($0)" } ?? "")]
        let header = ["COMPONENT", "KIND", "STAGE", "IN/S", "OUT/S", "QUEUE", "DEAD", "DROPPED", "DETAIL"]
        var rows = [header]
        for n in t.nodes {
            let queue = n.queue.map { "\(Int(($0.fill * 100).rounded()))%" + ($0.fill > 0.8 ? "!" : "") } ?? "-"
            rows.append([n.name, n.kind, n.stage.map(String.init) ?? "-", number(n.in_per_s), number(n.out_per_s), queue,
                         String(n.dead_lettered), String(n.dropped), detail(n)])
        }
        let widths = header.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        for r in rows {
            var line = ""
            for (c, cell) in r.enumerated() {
                let numeric = (2...7).contains(c)
                let pad = String(repeating: " ", count: widths[c] - cell.count)
                line += (c == 0 ? "" : "  ") + (numeric ? pad + cell : cell + (c == r.count - 1 ? "" : pad))
            }
            while line.hasSuffix(" ") { line.removeLast() }
            lines.append(String(line.prefix(max(width, 40))))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func number(_ v: Double) -> String {
        v >= 100 || v == v.rounded() ? String(Int(v.rounded())) : String(format: "%.1f", v)
    }

    private static func detail(_ n: TopologySnapshot.Node) -> String {
        var parts: [String] = []
        if let o = n.operator {
            parts.append("\(o.keys) keys \(o.state_bytes) B")
            if let w = o.watermark_ms { parts.append(w >= 4_000_000_000_000_000_000 ? "wm +inf" : "wm \(iso(w))") }
            if o.late > 0 { parts.append("late \(o.late)") }
        }
        if let k = n.kafka {
            let total = k.partitions.reduce(Int64(0)) { $0 + ($1.lag ?? 0) }
            parts.append("lag \(total)" + (k.paused ? " paused" : ""))
            parts += k.partitions.map { "\($0.topic)[\($0.partition)]=\($0.lag.map(String.init) ?? "?")" }
        }
        return parts.joined(separator: " ")
    }

    private static func iso(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
