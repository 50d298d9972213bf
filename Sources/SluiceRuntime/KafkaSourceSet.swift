import Foundation
import SluiceCore
import SluiceKafka
import SluiceSpec

/// One Kafka consumer read by several `kafka:` sources of a pipeline (see `SharedKafkaConsumers`):
/// subscribed to all their topics, so the group's assignor gives partition p of every topic to the
/// same replica. Each record goes to the source whose topics it belongs to, through that source's
/// own outlet (name, event time, dead letters); backpressure is per source (only the refusing
/// source's partitions are paused, see `KafkaConsumerClient.run(batchSize:stop:route:offers:)`).
///
/// Every member's `run` registers its outlet; the first member's thread drives the poll loop once
/// all have registered, and the others wait for it to end. `close` runs once, when the last member
/// finishes. Sendable by its lock: `outlets`, `running` and `finished` are only touched under
/// `condition`; the client is Sendable itself; the rest is immutable.
final class KafkaSourceSet: @unchecked Sendable {
    let client: KafkaConsumerClient
    /// Source names and topics, by member index.
    let members: [(name: String, topics: [String])]
    private let routes: [String: Int]
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var outlets: [Int: SourceOutlet] = [:]
    private var running = true
    private var finished = 0

    init(members: [(name: String, spec: KafkaSourceSpec)], pipeline: String, restored: [SourceCheckpoint],
         startTime: Int64?, log: @escaping @Sendable (String, String) -> Void) throws(SourceError) {
        self.members = members.map { ($0.name, $0.spec.topics) }
        var routes: [String: Int] = [:]
        for (i, m) in members.enumerated() { for t in m.spec.topics { routes[t] = i } }
        self.routes = routes
        let spec = members[0].spec
        let start = KafkaStartPosition(rawValue: spec.start) ?? .earliest
        var config = KafkaConsumerConfig(brokers: spec.brokers, group: spec.group ?? pipeline,
                                         topics: members.flatMap(\.spec.topics), start: start, options: spec.options)
        for r in restored {
            for p in r.kafka ?? [] { config.startOffsets[TopicPartition(topic: p.topic, partition: p.partition)] = p.offset }
        }
        config.startTime = restored.isEmpty ? startTime : nil
        let label = members.count == 1 ? "source '\(members[0].name)'" : "sources " + members.map { "'\($0.name)'" }.joined(separator: ", ")
        do {
            client = try KafkaConsumerClient(config: config) { level, message in log(level, "\(label): \(message)") }
        } catch {
            throw SourceError(source: members.map(\.name).joined(separator: ","), message: "\(error)")
        }
    }

    /// The member whose topics include `topic`.
    func route(_ topic: String) -> Int? { routes[topic] }

    /// Member `member`'s source thread: registers its outlet and either drives the consumer (member 0,
    /// once every member registered) or waits until the consumer stops.
    func run(member: Int, batchSize: Int, stop: StopFlag, checkpointing: Bool, outlet: SourceOutlet) {
        condition.lock()
        outlets[member] = outlet
        condition.broadcast()
        guard member == 0 else {
            while running { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1)) }
            condition.unlock()
            return
        }
        while outlets.count < members.count && !stop.isSet { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.1)) }
        let ordered = (0..<members.count).compactMap { outlets[$0] }
        condition.unlock()
        defer {
            condition.lock(); running = false; condition.broadcast(); condition.unlock()
        }
        guard ordered.count == members.count else { return }
        let client = client
        // A shared poll loop must not block on one source: wait briefly for room, and never while the
        // source runs ahead of a peer (`max_drift`): refused, only its partitions pause.
        let wait = members.count > 1 ? 0.05 : 1.0
        let offers: [([Event], KafkaBatchReceipt) -> Bool] = ordered.map { outlet in
            { events, receipt in
                // A batch's offsets become committable once every destination has written it.
                let ack: Acknowledgement? = checkpointing ? nil : Acknowledgement { client.acknowledge(receipt) }
                return outlet.offer(events, acknowledgement: ack, wait: wait, holdBack: false)
            }
        }
        let routes = routes
        client.run(batchSize: batchSize, stop: { stop.isSet }, route: { routes[$0] }, receipts: offers)
    }

    /// The assigned partitions of member `member`'s topics.
    func inputs(of member: Int) -> [SourceInput] {
        let topics = Set(members[member].topics)
        return client.stats.assignment.filter { topics.contains($0.topic) }.map { SourceInput(topic: $0.topic, partition: $0.partition) }
    }

    /// A member is done (the pipeline drained); the last one commits and closes the consumer.
    func finish() {
        condition.lock()
        finished += 1
        let last = finished >= members.count
        condition.unlock()
        if last { client.close() }
    }
}
