import SluiceSpec

/// What each component is, in a few words (`file`, `filter plays.is_long_play`, `kafka plays_us`):
/// the labels of `sluice graph`, the live page and `GET /topology`.
enum ComponentLabels {
    static func source(_ s: SourceSpec) -> String {
        switch s.kind {
        case .file: return "file"
        case .stdin: return "stdin"
        case .generate: return "generate"
        case .kafka(let k): return "kafka " + k.topics.joined(separator: ",")
        }
    }

    static func transform(_ t: TransformSpec) -> String {
        switch t.kind {
        case .filter(.match): return "filter match"
        case .filter(.udf(let ref)): return "filter \(ref)"
        case .filter(.lua): return "filter lua"
        case .map(let ref): return "map \(ref)"
        case .flatMap(let ref): return "flat_map \(ref)"
        case .project: return "project"
        case .join: return "join"
        case .dedup: return "dedup"
        case .aggregate: return "aggregate"
        }
    }

    static func sink(_ s: SinkSpec) -> String {
        switch s.kind {
        case .file: return "file"
        case .stdout: return "stdout"
        case .stderr: return "stderr"
        case .kafka(let k): return "kafka " + k.topic
        case .http(let h): return "http " + h.url
        case .memcached(let m): return "memcached " + m.key
        }
    }
}
