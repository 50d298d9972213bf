/// Which Kafka sources of a pipeline are read by one consumer (SPEC: sources that share brokers and
/// group are read by one consumer subscribed to all their topics, so the range assignor gives
/// partition p of every co-partitioned topic to the same replica).
///
/// Sources share a consumer when they have the same `brokers`, `group` (nil = the pipeline name),
/// `start` and `options` (they configure one librdkafka handle), and their topics are plain names
/// (no `^regex`) that no other source of the set reads: each record then belongs to exactly one
/// source, which acknowledges it. Any other source keeps a consumer of its own.
public enum SharedKafkaConsumers {
    /// Indices into `spec.sources` of the Kafka sources, one array per consumer, in spec order.
    public static func sets(in spec: PipelineSpec) -> [[Int]] {
        var sets: [[Int]] = []
        var kafka: [Int: KafkaSourceSpec] = [:]
        for (i, s) in spec.sources.enumerated() {
            guard case .kafka(let k) = s.kind else { continue }
            kafka[i] = k
            let plain = !k.topics.contains { $0.hasPrefix("^") } && Set(k.topics).count == k.topics.count
            let match = plain ? sets.firstIndex { set in
                let first = kafka[set[0]]!
                let taken = Set(set.flatMap { kafka[$0]!.topics })
                return first.brokers == k.brokers && (first.group ?? spec.name) == (k.group ?? spec.name)
                    && first.start == k.start && first.options == k.options
                    && !first.topics.contains { $0.hasPrefix("^") } && taken.isDisjoint(with: k.topics)
            } : nil
            if let match { sets[match].append(i) } else { sets.append([i]) }
        }
        return sets
    }
}
