import SluiceCore
import SluiceKafka
import SluiceSpec

/// `kafka:` source: a consumer group member, or one member of a consumer shared with the pipeline's
/// other Kafka sources of the same brokers and group (`KafkaSourceSet`). A batch waits briefly for
/// room in the work queue; if the queue stays full (or the source runs more than `max_drift` ahead
/// of a peer), the consumer pauses this source's partitions and keeps polling. A batch's offsets
/// become committable only when every destination has written its events (`Acknowledgement`).
final class KafkaSource: EventSource {
    let name: String
    let consumer: KafkaSourceSet
    let member: Int
    /// With checkpoints on, offsets are committed only as far as the last complete checkpoint.
    let checkpointing: Bool

    var client: KafkaConsumerClient { consumer.client }

    init(name: String, consumer: KafkaSourceSet, member: Int, checkpointing: Bool) {
        self.name = name; self.consumer = consumer; self.member = member; self.checkpointing = checkpointing
    }

    func run(batchSize: Int, stop: StopFlag, outlet: SourceOutlet) throws(SourceError) {
        consumer.run(member: member, batchSize: batchSize, stop: stop, checkpointing: checkpointing, outlet: outlet)
    }

    /// The assigned partitions of this source's topics: a partition that has sent nothing yet holds
    /// the watermark back (until it has been silent for the source's `idle` time).
    var inputs: (@Sendable () -> [SourceInput]?)? {
        let consumer = consumer, member = member
        return { consumer.inputs(of: member) }
    }

    func checkpointed(_ position: SourceCheckpoint) {
        var below: [TopicPartition: Int64] = [:]
        for p in position.kafka ?? [] { below[TopicPartition(topic: p.topic, partition: p.partition)] = p.offset }
        client.acknowledge(below: below)
    }

    /// Commits what was acknowledged and leaves the group (the last member of a shared consumer
    /// runs `rd_kafka_consumer_close`).
    func finish() { consumer.finish() }
}
