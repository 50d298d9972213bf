import SluiceCore
import SluiceKafka
import SluiceSpec

/// `kafka:` source: a consumer group member. A batch waits up to a second for room in the work queue;
/// if the queue stays full the consumer pauses its partitions and keeps polling. A batch's offsets become
/// committable only when every destination has written its events (`Acknowledgement`).
final class KafkaSource: EventSource {
    let name: String
    let client: KafkaConsumerClient
    /// With checkpoints on, offsets are committed only as far as the last complete checkpoint.
    let checkpointing: Bool

    /// `restored`: the checkpointed offsets to start from; `startTime`: a rewind's time, for partitions without one.
    init(name: String, spec: KafkaSourceSpec, pipeline: String, checkpointing: Bool = false,
         restored: SourceCheckpoint? = nil, startTime: Int64? = nil,
         log: @escaping @Sendable (String, String) -> Void) throws(SourceError) {
        self.name = name
        self.checkpointing = checkpointing
        let start = KafkaStartPosition(rawValue: spec.start) ?? .earliest
        var config = KafkaConsumerConfig(brokers: spec.brokers, group: spec.group ?? pipeline, topics: spec.topics,
                                         start: start, options: spec.options)
        for p in restored?.kafka ?? [] { config.startOffsets[TopicPartition(topic: p.topic, partition: p.partition)] = p.offset }
        config.startTime = restored == nil ? startTime : nil
        do {
            client = try KafkaConsumerClient(config: config) { level, message in log(level, "source '\(name)': \(message)") }
        } catch {
            throw SourceError(source: name, message: "\(error)")
        }
    }

    func run(batchSize: Int, stop: StopFlag, outlet: SourceOutlet) throws(SourceError) {
        let client = client
        client.run(batchSize: batchSize, stop: { stop.isSet }) { events in
            let positions = events.compactMap { e -> (topic: String, partition: Int32, offset: Int64)? in
                guard let m = e.meta, let t = m.topic, let p = m.partition, let o = m.offset else { return nil }
                return (t, p, o)
            }
            // With checkpoints the outlet attaches the checkpoint epoch instead; commits follow checkpoints.
            let ack = self.checkpointing ? nil : Acknowledgement { client.acknowledge(positions) }
            // Ordinary backpressure: wait a little for room. Only a real stall pauses the partitions
            // (librdkafka drops what it prefetched on pause, and refetching costs a fetch backoff).
            return outlet.offer(events, acknowledgement: ack, wait: 1.0)
        }
    }

    /// The assigned partitions: a partition that has sent nothing yet holds the watermark back
    /// (until it has been silent for the source's `idle` time).
    var inputs: (@Sendable () -> [SourceInput]?)? {
        let client = client
        return { client.stats.assignment.map { SourceInput(topic: $0.topic, partition: $0.partition) } }
    }

    func checkpointed(_ position: SourceCheckpoint) {
        var below: [TopicPartition: Int64] = [:]
        for p in position.kafka ?? [] { below[TopicPartition(topic: p.topic, partition: p.partition)] = p.offset }
        client.acknowledge(below: below)
    }

    /// Commits what was acknowledged and leaves the group (always runs `rd_kafka_consumer_close`).
    func finish() { client.close() }
}
