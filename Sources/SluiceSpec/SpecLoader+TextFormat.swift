/// `format: text` events are lines, not JSON objects: the declarative stages that read fields
/// (`project`, `match` in a filter or a sink's `when`) are rejected where they read a text source directly.
extension Loader {
    mutating func checkTextSources(sources: [SourceSpec], transforms: [TransformSpec], sinks: [SinkSpec]) {
        let text = Set(sources.filter { $0.format == .text }.map(\.name))
        guard !text.isEmpty else { return }
        func reject(_ location: SourceLocation, _ what: String, _ from: [String], instead: String) {
            guard let s = from.first(where: text.contains) else { return }
            diags.error(location, "\(what) on source '\(s)', which is 'format: text' (its events are lines, not JSON objects); "
                        + "use \(instead), or make the source 'format: json'")
        }
        for t in transforms {
            switch t.kind {
            case .project: reject(t.location, "transform '\(t.name)' uses 'project'", t.from, instead: "a Lua map")
            case .filter(.match): reject(t.location, "transform '\(t.name)' uses 'match'", t.from, instead: "a Lua filter")
            default: break
            }
        }
        for s in sinks {
            if case .match? = s.when { reject(s.location, "sink '\(s.name)' uses 'match' in 'when'", s.from, instead: "a Lua 'when'") }
        }
    }
}
