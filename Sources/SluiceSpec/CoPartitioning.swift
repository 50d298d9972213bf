/// Warnings (not errors) about stateful transforms whose inputs may not be co-partitioned.
///
/// With Kafka sources and several replicas in one consumer group, keyed state is partitioned like
/// the input partitions: a replica sees partition p of every topic it reads, so a join's two sides
/// meet only when both topics have the same partition count and their records are partitioned by
/// the join key. The spec cannot tell a topic's partition count or the key its producer used, so
/// these are warnings about what it can see:
///
/// - one side of a join (or part of an input) is read from Kafka and the other is not (each replica
///   reads all of the other side but only its own partitions of the Kafka one);
/// - the inputs read different topics (they must have the same partition count);
/// - both sides read one topic with keys of different fields (a self-join on another field);
/// - the inputs come from Kafka sources that cannot share one consumer (different brokers, group,
///   `start` or options, or overlapping or regex topics: see `SharedKafkaConsumers`), so Kafka
///   assigns their partitions independently;
/// - a source sets `partition.assignment.strategy` to something other than the range assignor;
/// - a side's key is computed after a transform that can change fields (`map`, `flat_map`,
///   `project` or a stateful transform), so it may not be the key its records are partitioned by.
///
/// The same holds for an aggregate or dedup whose input merges several topics, or whose key is
/// computed after such a transform. A stateful transform with no Kafka-fed input (files, stdin,
/// generators) runs in one process: no warning.
public enum CoPartitioning {
    /// What one keyed input is read from, following `from` upstream through transforms.
    struct Origin {
        /// Kafka topics, by source name.
        var kafka: [(source: String, topics: [String])] = []
        /// Sources that are not Kafka.
        var other: [String] = []
        /// Transforms on the way that can change the fields a key is computed from.
        var rekeyedBy: [String] = []
    }

    /// Every co-partitioning warning of the spec's stateful transforms (joins, and aggregates or
    /// dedups over several topics), in spec order, as `warning: ...` diagnostics.
    public static func warnings(in spec: PipelineSpec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for t in spec.transforms {
            guard let what = t.statefulName else { continue }
            let sides = t.keyedInputs.map { (input: $0, origin: origin(of: $0.from, in: spec)) }
            guard sides.contains(where: { !$0.origin.kafka.isEmpty }) else { continue }
            for side in sides where !side.origin.other.isEmpty {
                let other = side.origin.other.map { "'\($0)'" }.joined(separator: ", ")
                out.append(warning(side.input.location,
                    "input '\(side.input.from)' of \(what) '\(t.name)' is read from \(other) (not Kafka) while "
                    + "\(sides.count > 1 && side.origin.kafka.isEmpty ? "the other side is" : "other events are") "
                    + "read from Kafka: with several replicas, each reads all of it but only its own partitions of the Kafka "
                    + "topics, so the inputs are not co-partitioned"))
            }
            let topics = Set(sides.flatMap { $0.origin.kafka.flatMap(\.topics) }).sorted()
            if topics.count > 1 {
                out.append(warning(t.location,
                    "\(what) '\(t.name)' reads topics \(topics.joined(separator: ", ")): they are co-partitioned only if "
                    + "they have the same partition count and are keyed by the \(what) key (the spec cannot tell)"))
            }
            let consumers = sides.flatMap { $0.origin.kafka.map(\.source) }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            let sets = SharedKafkaConsumers.sets(in: spec)
            let setOf = { (name: String) in sets.firstIndex { $0.contains { spec.sources[$0].name == name } } }
            if Set(consumers.map(setOf)).count > 1 {
                out.append(warning(t.location,
                    "\(what) '\(t.name)' reads Kafka sources \(consumers.map { "'\($0)'" }.joined(separator: ", ")) that "
                    + "cannot share one consumer (different brokers, group, start or options, or overlapping or regex "
                    + "topics): with several replicas Kafka assigns their partitions independently, so partition p of "
                    + "each can go to a different replica; give them the same brokers, group and options"))
            }
            for (source, strategy) in assignors(of: consumers, in: spec) {
                out.append(warning(t.location,
                    "\(what) '\(t.name)' reads source '\(source)' with partition.assignment.strategy '\(strategy)': only "
                    + "the range assignor gives partition p of every topic to the same replica"))
            }
            if case .join(let join) = t.kind, topics.count == 1, join.left.key.fields != join.right.key.fields,
               sides.allSatisfy({ !$0.origin.kafka.isEmpty && $0.origin.rekeyedBy.isEmpty }) {
                out.append(warning(t.location,
                    "join '\(t.name)' reads one topic (\(topics[0])) with keys '\(join.left.key)' and '\(join.right.key)' "
                    + "of different fields: its records can be partitioned by at most one of them"))
            }
            for side in sides where !side.origin.kafka.isEmpty && !side.origin.rekeyedBy.isEmpty {
                let via = side.origin.rekeyedBy.map { "'\($0)'" }.joined(separator: ", ")
                out.append(warning(side.input.location,
                    "key '\(side.input.key)' of input '\(side.input.from)' of \(what) '\(t.name)' is computed after "
                    + "\(via), which can change fields: it may not be the key its Kafka records are partitioned by"))
            }
        }
        return out
    }

    /// The Kafka sources among `names` (once each) whose `partition.assignment.strategy` option does
    /// not start with the range assignor (librdkafka's default, `range,roundrobin`, does).
    private static func assignors(of names: [String], in spec: PipelineSpec) -> [(String, String)] {
        var out: [(String, String)] = []
        for s in spec.sources where names.contains(s.name) {
            guard case .kafka(let k) = s.kind, let strategy = k.options["partition.assignment.strategy"] else { continue }
            let first = strategy.split(separator: ",").first.map { $0.filter { $0 != " " && $0 != "\t" } } ?? ""
            if first != "range" { out.append((s.name, strategy)) }
        }
        return out
    }

    private static func warning(_ location: SourceLocation, _ message: String) -> Diagnostic {
        Diagnostic(location: location, message: "warning: " + message)
    }

    /// Follows `name` upstream; cycles cannot occur in a valid spec, `seen` guards anyway.
    static func origin(of name: String, in spec: PipelineSpec) -> Origin {
        var origin = Origin()
        var seen: Set<String> = []
        func visit(_ name: String) {
            guard seen.insert(name).inserted else { return }
            if let s = spec.sources.first(where: { $0.name == name }) {
                if case .kafka(let k) = s.kind { origin.kafka.append((s.name, k.topics)) } else { origin.other.append(s.name) }
                return
            }
            guard let t = spec.transforms.first(where: { $0.name == name }) else { return }
            switch t.kind {
            case .filter: break
            case .map, .flatMap, .project, .join, .dedup, .aggregate:
                if !origin.rekeyedBy.contains(t.name) { origin.rekeyedBy.append(t.name) }
            }
            for upstream in t.from { visit(upstream) }
        }
        visit(name)
        return origin
    }
}

extension TransformSpec {
    /// "join", "dedup" or "aggregate" for a stateful transform; nil for a stateless one.
    var statefulName: String? {
        switch kind {
        case .join: "join"
        case .dedup: "dedup"
        case .aggregate: "aggregate"
        case .filter, .map, .flatMap, .project: nil
        }
    }
}
