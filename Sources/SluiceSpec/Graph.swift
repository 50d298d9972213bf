/// Graph accessors over a validated spec (pure; used by the runtime, `sluice graph` and `sluice validate`).
public extension PipelineSpec {
    enum ComponentRole: Sendable, Equatable { case source, transform, sink }

    /// Every component name: sources, then transforms, then sinks, each in file order (the dead letter sink excluded).
    var componentNames: [String] { sources.map(\.name) + transforms.map(\.name) + sinks.map(\.name) }

    func role(of name: String) -> ComponentRole? {
        if sources.contains(where: { $0.name == name }) { return .source }
        if transforms.contains(where: { $0.name == name }) { return .transform }
        if sinks.contains(where: { $0.name == name }) { return .sink }
        return nil
    }

    /// The components `name` reads from (its `from`, in order); empty for sources and unknown names.
    func upstreams(of name: String) -> [String] {
        if let t = transforms.first(where: { $0.name == name }) { return t.from }
        if let s = sinks.first(where: { $0.name == name }) { return s.from }
        return []
    }

    /// The transforms and sinks that read from `name`, in file order (transforms first).
    func downstreams(of name: String) -> [String] {
        transforms.filter { $0.from.contains(name) }.map(\.name) + sinks.filter { $0.from.contains(name) }.map(\.name)
    }

    /// All downstream edges at once: name -> readers (transforms first, file order).
    var downstreamMap: [String: [String]] {
        var out: [String: [String]] = [:]
        for t in transforms { for u in t.from { out[u, default: []].append(t.name) } }
        for s in sinks { for u in s.from { out[u, default: []].append(s.name) } }
        return out
    }

    /// Every component, each after all of its upstreams. Ties keep file order (sources, transforms, sinks).
    /// For a validated spec the graph is acyclic; should it not be, the components left over are appended in file order.
    func topologicalOrder() -> [String] {
        let names = componentNames
        let known = Set(names)
        var upstream: [String: [String]] = [:]
        for t in transforms { upstream[t.name] = t.from }
        for s in sinks { upstream[s.name] = s.from }
        var pending: [String: Int] = [:]
        for n in names { pending[n] = Set(upstream[n] ?? []).filter { known.contains($0) }.count }
        let readers = downstreamMap
        let position = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        // A small binary heap on file position keeps this O(n log n).
        var heap = Heap()
        for n in names where pending[n] == 0 { heap.push(position[n]!) }
        var out: [String] = []
        var emitted = Set<String>()
        while let p = heap.pop() {
            let n = names[p]
            guard emitted.insert(n).inserted else { continue }
            out.append(n)
            for r in Set(readers[n] ?? []) {
                pending[r, default: 0] -= 1
                if pending[r] == 0 { heap.push(position[r]!) }
            }
        }
        if out.count < names.count { out += names.filter { !emitted.contains($0) } }
        return out
    }
}

private struct Heap {
    var items: [Int] = []
    mutating func push(_ v: Int) {
        items.append(v)
        var i = items.count - 1
        while i > 0, items[(i - 1) / 2] > items[i] { items.swapAt(i, (i - 1) / 2); i = (i - 1) / 2 }
    }
    mutating func pop() -> Int? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, items[l] < items[m] { m = l }
                if r < items.count, items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}
