/// What a batch handed out by `KafkaConsumerClient.run(batchSize:stop:route:receipts:)` covers: per
/// partition, the first and the last offset of its records in the batch.
///
/// Such a batch is acknowledged as a whole (`KafkaConsumerClient.acknowledge(_:)`): the consumer
/// tracks one entry per partition and batch (its last offset) instead of one per record, so the
/// bookkeeping costs per batch, not per message. The committed offset still never passes a record
/// of an unacknowledged batch: a partition's entries become committable only as a contiguous prefix.
public struct KafkaBatchReceipt: Sendable, Equatable {
    /// One partition's records in the batch: offsets `first...last` (gaps possible, e.g. compaction).
    public struct Span: Sendable, Equatable {
        public var partition: TopicPartition
        public var first: Int64
        public var last: Int64
        /// The partition's tracker the span was registered with (`OffsetTracker.generation`).
        var generation: UInt64 = 0
    }

    /// One span per partition present in the batch, in order of first appearance.
    public internal(set) var spans: [Span]

    init(spans: [Span]) { self.spans = spans }
}
