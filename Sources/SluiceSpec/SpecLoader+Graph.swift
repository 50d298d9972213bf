import SluiceCore

/// Graph checks: unknown `from`s, cycles, unused sources, outputs that reach no sink.
extension Loader {
    /// A file source reading a file that a file sink (or the dead letter sink) of the same pipeline writes would read
    /// its own output forever.
    mutating func checkFileLoops() {
        for source in fileSourcePaths {
            guard let sink = fileSinkPaths.first(where: { $0.path == source.path }) else { continue }
            let writer = sink.name == "dead_letter" ? "the dead letter sink" : "sink '\(sink.name)'"
            diags.error(source.location, "source '\(source.name)' reads the file that \(writer) writes (\(source.path)); the pipeline would read its own output forever")
        }
    }

    mutating func validateGraph() {
        let byName = Dictionary(graph.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let readable = graph.filter { $0.role != .sink }.map(\.name)
        var allKnown = true
        // Edges upstream -> downstream, only for references that resolve to a source or transform.
        var downstream: [String: [String]] = [:]
        for node in graph {
            if !node.fromKnown { allKnown = false }
            for (up, at) in node.from {
                guard let d = declared[up] else {
                    diags.error(at, "unknown component '\(up)' in 'from' of \(node.roleName) '\(node.name)'" + Suggest.hint(for: up, among: readable))
                    allKnown = false
                    continue
                }
                if d.role == .sink {
                    diags.error(at, "\(node.roleName) '\(node.name)' cannot read from sink '\(up)'")
                    continue
                }
                downstream[up, default: []].append(node.name)
            }
        }

        // Cycles: Kahn's algorithm over transforms; what remains is in a cycle or downstream of one.
        let transforms = graph.filter { $0.role == .transform }
        var indegree: [String: Int] = [:]
        for t in transforms {
            indegree[t.name] = t.from.filter { byName[$0.name]?.role == .transform }.count
        }
        var ready = transforms.filter { indegree[$0.name] == 0 }.map(\.name)
        var done = Set<String>()
        while let n = ready.popLast() {
            done.insert(n)
            for d in downstream[n] ?? [] where byName[d]?.role == .transform {
                indegree[d, default: 0] -= 1
                if indegree[d] == 0 { ready.append(d) }
            }
        }
        var inCycle = Set<String>()
        var reported = Set<String>()
        let order = Dictionary(transforms.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        for t in transforms where !done.contains(t.name) && !reported.contains(t.name) {
            // Walk upstream inside the remaining set until a node repeats.
            var path: [String] = [t.name]
            var index: [String: Int] = [t.name: 0]
            var current = t.name
            var hitReported = false
            while true {
                guard let next = byName[current]?.from.first(where: { byName[$0.name]?.role == .transform && !done.contains($0.name) })?.name
                else { hitReported = true; break }
                if reported.contains(next) { hitReported = true; break }
                if let i = index[next] {
                    path = Array(path[i...])
                    break
                }
                index[next] = path.count
                path.append(next)
                current = next
            }
            for n in path { reported.insert(n) }
            if hitReported { continue }
            // `path` lists the cycle against the data flow; report it along the flow, starting at the first in file order.
            var cycle = Array(path.reversed())
            if let start = cycle.indices.min(by: { order[cycle[$0]]! < order[cycle[$1]]! }) {
                cycle = Array(cycle[start...] + cycle[..<start])
            }
            inCycle.formUnion(cycle)
            let first = byName[cycle[0]]!
            diags.error(first.location, "cycle between transforms: " + (cycle + [cycle[0]]).joined(separator: " -> "))
        }

        guard allKnown else { return }
        // Reachability to a sink (walk upstream from every sink).
        var reaches = Set<String>()
        var stack = graph.filter { $0.role == .sink }.map(\.name)
        while let n = stack.popLast() {
            guard reaches.insert(n).inserted else { continue }
            for (up, _) in byName[n]?.from ?? [] where !reaches.contains(up) { stack.append(up) }
        }
        for node in graph {
            switch node.role {
            case .source where downstream[node.name] == nil:
                diags.error(node.location, "source '\(node.name)' is not used (no transform or sink reads from it)")
            case .transform where !reaches.contains(node.name) && !inCycle.contains(node.name):
                diags.error(node.location, "the output of transform '\(node.name)' reaches no sink")
            default:
                break
            }
        }
    }
}
