import Foundation
import SluiceCore
import SluiceKafka
import SluiceSpec

extension Pipeline {
    /// The changelog of a Kafka-fed stateful pipeline with checkpoints, or nil (with a warning saying
    /// why when one was expected): every Kafka source must be read by one consumer, and each
    /// operator's topic must exist or be created (compacted, with the input topics' partition count).
    static func makeChangelog(_ spec: PipelineSpec, plan: Plan, restore: RestorePoint?,
                              log: @escaping @Sendable (String, String) -> Void) -> Changelog? {
        guard spec.settings.checkpoint != nil, plan.isStateful else { return nil }
        let sets = SharedKafkaConsumers.sets(in: spec)
        guard let set = sets.first else { return nil }
        let warn = { (why: String) in
            log("warning", "changelog topics are off for this run: \(why); state does not follow Kafka partitions across "
                + "replicas (it is restored from this replica's own checkpoint)")
        }
        guard sets.count == 1 else {
            warn("the Kafka sources are read by \(sets.count) consumers (they differ in brokers, group, start or options)")
            return nil
        }
        if restore?.marker != nil {
            log("info", "after 'sluice rewind' the state comes from the rewound checkpoint, not from the changelog topics: they are off for this run")
            return nil
        }
        let kafka = set.compactMap { i -> KafkaSourceSpec? in if case .kafka(let k) = spec.sources[i].kind { return k } else { return nil } }
        guard let brokers = kafka.first?.brokers else { return nil }
        let counts: [String: Int]
        do { counts = try KafkaTopicAdmin.partitionCounts(brokers: brokers) } catch {
            warn("cannot read the topics of \(brokers) (\(error))")
            return nil
        }
        let inputs = kafka.flatMap(\.topics)
        guard let partitions = inputs.compactMap({ counts[$0] }).max(), inputs.allSatisfy({ counts[$0] != nil }) else {
            warn("input topics \(inputs.filter { counts[$0] == nil }.joined(separator: ", ")) do not exist yet (their partition count is the changelogs')")
            return nil
        }
        for op in plan.operators {
            let topic = Changelog.topic(pipeline: spec.name, operator: op.name)
            if let n = counts[topic] {
                guard n >= partitions else {
                    warn("changelog topic \(topic) has \(n) partitions, fewer than the input topics' \(partitions)")
                    return nil
                }
                continue
            }
            do {
                try KafkaTopicAdmin.createTopic(brokers: brokers, name: topic, partitions: partitions, configs: ["cleanup.policy": "compact"])
                log("info", "changelog topic \(topic) created (\(partitions) partitions, cleanup.policy=compact)")
            } catch {
                warn("changelog topic \(topic) does not exist and cannot be created (\(error)); create it with \(partitions) "
                     + "partitions and cleanup.policy=compact")
                return nil
            }
        }
        do {
            let lanes = Dictionary(plan.operators.map { ($0.name, $0.parallelism) }, uniquingKeysWith: { a, _ in a })
            let changelog = try Changelog(pipeline: spec.name, brokers: brokers, lanes: lanes, log: log)
            log("info", "changelog topics: \(plan.operators.map { changelog.topic(of: $0.name) }.joined(separator: ", ")); "
                + "state follows the assigned partitions")
            return changelog
        } catch {
            warn("cannot make the changelog producer (\(error))")
            return nil
        }
    }

    /// With checkpoints: every Kafka consumer's revoked partitions leave its sources' checkpoint
    /// positions; with changelogs, the consumer restores assigned partitions' keys from the changelog
    /// before their records are processed, and drops revoked partitions' keys (after their last
    /// checkpoint's changelog and offsets: a revoke commits nothing newer, see `Changelog`).
    func followPartitions(_ changelog: Changelog?, stages: KeyedStages, outlets: [SourceOutlet]) {
        var sets: [ObjectIdentifier: (set: KafkaSourceSet, outlets: [SourceOutlet])] = [:]
        for (i, source) in sources.enumerated() {
            guard let k = source as? KafkaSource else { continue }
            sets[ObjectIdentifier(k.consumer), default: (k.consumer, [])].outlets.append(outlets[i])
        }
        for (set, outlets) in sets.values {
            let changelog = sets.count == 1 ? changelog : nil
            var assigned: (@Sendable ([TopicPartition]) -> Void)?
            if let changelog {
                assigned = { [self] parts in restore(parts, changelog, stages) }
            }
            let revoked: @Sendable ([TopicPartition], Bool) -> Void = { [self] parts, _ in
                for outlet in outlets { outlet.forget(parts) }
                if let changelog { drop(parts, changelog, stages) }
            }
            set.client.setRebalanceHooks(assigned: assigned, revoked: revoked)
        }
    }

    private static let controlChannel = Channel(stage: -2, lane: 0)

    /// Reads the newly assigned partitions' changelog and sends each key to the stage worker that owns it.
    private func restore(_ parts: [TopicPartition], _ changelog: Changelog, _ stages: KeyedStages) {
        let fresh = changelog.assigning(parts)
        guard !fresh.isEmpty else { return }
        let began = ContinuousClock.now
        var keys = 0
        for (o, op) in plan.operators.enumerated() where changelog.lanes[op.name] != nil {
            var entries: [ChangelogEntry] = []
            for attempt in 1...3 {
                do {
                    entries = try changelog.read(op: op.name, partitions: fresh)
                    break
                } catch {
                    let last = attempt == 3
                    options.log(last ? "error" : "warning", "transform '\(op.name)': the changelog of partitions \(fresh.sorted()) could not be read "
                        + "(\(error))" + (last ? "; their keys start empty" : "; trying again"))
                }
            }
            keys += entries.count
            var byLane = Array(repeating: [ChangelogEntry](), count: op.parallelism)
            for e in entries { byLane[e.key.lane(of: op.parallelism)].append(e) }
            for lane in 0..<op.parallelism {
                stages.inboxes[o][lane].push(KeyedBatch(channel: Self.controlChannel, events: [], watermark: EventTime.missing,
                                                        control: .restore(partitions: fresh, entries: byLane[lane])), weight: 1)
            }
            changelog.restored(op: op.name, entries, partitions: fresh)
        }
        options.log("info", "changelog: partitions \(fresh.sorted()) assigned: \(keys) keys read in "
            + String(format: "%.0f ms", CheckpointCoordinator.millis(ContinuousClock.now - began)))
    }

    /// Drops the keys of partitions no longer held from their stage workers.
    private func drop(_ parts: [TopicPartition], _ changelog: Changelog, _ stages: KeyedStages) {
        let gone = changelog.revoked(parts)
        guard !gone.isEmpty else { return }
        for (o, op) in plan.operators.enumerated() where changelog.lanes[op.name] != nil {
            for lane in 0..<op.parallelism {
                stages.inboxes[o][lane].push(KeyedBatch(channel: Self.controlChannel, events: [], watermark: EventTime.missing,
                                                        control: .drop(partitions: gone)), weight: 1)
            }
        }
    }
}
