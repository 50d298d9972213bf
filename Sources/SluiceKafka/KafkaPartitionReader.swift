import CRdKafka
import Foundation

/// One record read back from a topic: its partition, key and value (nil for a tombstone).
public struct KafkaRecord: Sendable, Equatable {
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]
    public var value: [UInt8]?
}

/// Reads partitions of a topic from their beginning to their end offset as of the call (the high
/// watermark queried first), with a consumer of its own that joins no group and commits nothing.
/// Used to restore changelog topics.
public enum KafkaPartitionReader {
    /// Every record of `partitions` of `topic` below the end offsets queried at the start, in
    /// offset order per partition. Throws when the end is not reached within `timeout` seconds.
    public static func readToEnd(brokers: String, topic: String, partitions: [Int32], timeout: Double = 60,
                                 options: [String: String] = [:]) throws(KafkaError) -> [KafkaRecord] {
        guard !partitions.isEmpty else { return [] }
        var settings: [(String, String)] = [
            ("bootstrap.servers", brokers), ("client.id", "sluice-changelog-reader"),
            ("group.id", "sluice-changelog-reader"), ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"), ("enable.partition.eof", "true"),
        ]
        for (k, v) in options.sorted(by: { $0.key < $1.key }) where k != "group.id" { settings.append((k, v)) }
        let conf = try makeConf(settings, component: "changelog reader")
        let rk = try makeHandle(RD_KAFKA_CONSUMER, conf, component: "changelog reader")
        defer { rd_kafka_consumer_close(rk); rd_kafka_destroy(rk) }
        rd_kafka_poll_set_consumer(rk)
        let deadline = Date(timeIntervalSinceNow: timeout)
        var ends: [Int32: Int64] = [:]
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for p in partitions {
            var low: Int64 = -1, high: Int64 = -1
            let err = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, Int32(max(1, deadline.timeIntervalSinceNow) * 1000))
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "changelog \(topic)[\(p)]: end offset") }
            if high > low {
                ends[p] = high
                rd_kafka_topic_partition_list_add(list, topic, p).pointee.offset = low
            }
        }
        guard !ends.isEmpty else { return [] }
        let err = rd_kafka_assign(rk, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, "changelog \(topic): assign") }
        var out: [KafkaRecord] = []
        var pending = Set(ends.keys)
        while !pending.isEmpty {
            guard Date() < deadline else {
                throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue,
                                 message: "changelog \(topic): partitions \(pending.sorted()) not read to their end within \(timeout) s")
            }
            guard let msg = rd_kafka_consumer_poll(rk, 100) else { continue }
            defer { rd_kafka_message_destroy(msg) }
            let m = msg.pointee
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                if m.offset >= (ends[m.partition] ?? 0) { pending.remove(m.partition) }
                continue
            }
            guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                let text = rd_kafka_message_errstr(msg).map { String(cString: $0) } ?? ""
                throw KafkaError(code: m.err.rawValue, message: "changelog \(topic): \(KafkaError.describe(m.err)) \(text)")
            }
            guard let end = ends[m.partition], m.offset < end else { continue }
            out.append(KafkaRecord(partition: m.partition, offset: m.offset, key: bytes(m.key, m.key_len),
                                   value: m.payload == nil ? nil : bytes(m.payload, m.len)))
            if m.offset >= end - 1 { pending.remove(m.partition) }
        }
        return out
    }
}
