/// Warnings about stateful transforms whose state cannot follow Kafka partitions across replicas.
///
/// Changelog topics (`PIPELINE-OPERATOR-changelog`) are written once per complete checkpoint, so they
/// need `settings.checkpoint`: without it a Kafka-fed stateful transform keeps its state in memory
/// only, and a restart or a rebalance starts the moved partitions' keys empty.
public enum ChangelogRequirements {
    /// One warning per Kafka-fed stateful transform of a spec without `settings.checkpoint`.
    public static func warnings(in spec: PipelineSpec) -> [Diagnostic] {
        guard spec.settings.checkpoint == nil else { return [] }
        var out: [Diagnostic] = []
        for t in spec.transforms {
            guard let what = t.statefulName else { continue }
            guard t.keyedInputs.contains(where: { !CoPartitioning.origin(of: $0.from, in: spec).kafka.isEmpty }) else { continue }
            out.append(Diagnostic(location: t.location, message:
                "warning: \(what) '\(t.name)' reads Kafka without settings.checkpoint: its state is in memory only (no "
                + "checkpoint, no changelog topic), so after a restart or a rebalance its keys start empty; with "
                + "settings.checkpoint it is kept in \(spec.name)-\(t.name)-changelog"))
        }
        return out
    }
}
