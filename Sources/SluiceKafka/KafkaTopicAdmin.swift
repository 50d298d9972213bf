import CRdKafka
import Foundation

/// Topic metadata and creation for Sluice's own topics (the changelog topics), each call on a
/// short-lived handle of its own.
public enum KafkaTopicAdmin {
    /// The partition count of every topic the cluster knows (a metadata request for all topics, so
    /// nothing is auto-created by asking).
    public static func partitionCounts(brokers: String, timeout: Double = 10) throws(KafkaError) -> [String: Int] {
        let rk = try handle(brokers)
        defer { rd_kafka_destroy(rk) }
        var md: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 1, nil, &md, Int32(timeout * 1000))
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let md else { throw KafkaError(err, "kafka metadata from \(brokers)") }
        defer { rd_kafka_metadata_destroy(md) }
        var out: [String: Int] = [:]
        for i in 0..<Int(md.pointee.topic_cnt) {
            let t = md.pointee.topics[i]
            if t.err == RD_KAFKA_RESP_ERR_NO_ERROR, let name = t.topic { out[String(cString: name)] = Int(t.partition_cnt) }
        }
        return out
    }

    /// Creates `name` with `partitions` partitions, the broker's default replication factor and the
    /// given topic configs (e.g. `cleanup.policy=compact`) through the admin API (CreateTopics).
    /// librdkafka's mock cluster (`sluice dev kafka`) does not serve it: that fails after `timeout`.
    public static func createTopic(brokers: String, name: String, partitions: Int, configs: [String: String],
                                   timeout: Double = 3) throws(KafkaError) {
        let rk = try handle(brokers)
        defer { rd_kafka_destroy(rk) }
        var errbuf = [CChar](repeating: 0, count: 512)
        guard let topic = rd_kafka_NewTopic_new(name, Int32(partitions), -1, &errbuf, errbuf.count) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: "create topic \(name): \(cString(errbuf))")
        }
        defer { rd_kafka_NewTopic_destroy(topic) }
        for (k, v) in configs.sorted(by: { $0.key < $1.key }) {
            let e = rd_kafka_NewTopic_set_config(topic, k, v)
            if e != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(e, "create topic \(name): config \(k)=\(v)") }
        }
        guard let queue = rd_kafka_queue_new(rk) else { throw KafkaError(code: -1, message: "create topic \(name): no queue") }
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_request_timeout(options, Int32(timeout * 1000), &errbuf, errbuf.count)
        var topics: [OpaquePointer?] = [topic]
        rd_kafka_CreateTopics(rk, &topics, 1, options, queue)
        guard let ev = rd_kafka_queue_poll(queue, Int32(timeout * 1000 + 1000)) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue, message: "create topic \(name): no answer within \(timeout) s")
        }
        defer { rd_kafka_event_destroy(ev) }
        let e = rd_kafka_event_error(ev)
        if e != RD_KAFKA_RESP_ERR_NO_ERROR {
            let text = rd_kafka_event_error_string(ev).map { String(cString: $0) } ?? ""
            throw KafkaError(code: e.rawValue, message: "create topic \(name): \(KafkaError.describe(e)) \(text)")
        }
        guard let result = rd_kafka_event_CreateTopics_result(ev) else { return }
        var n = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &n), n > 0, let first = results[0] else { return }
        let te = rd_kafka_topic_result_error(first)
        if te != RD_KAFKA_RESP_ERR_NO_ERROR && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS {
            let text = rd_kafka_topic_result_error_string(first).map { String(cString: $0) } ?? ""
            throw KafkaError(code: te.rawValue, message: "create topic \(name): \(KafkaError.describe(te)) \(text)")
        }
    }

    private static func handle(_ brokers: String) throws(KafkaError) -> OpaquePointer {
        let conf = try makeConf([("bootstrap.servers", brokers), ("client.id", "sluice-admin")], component: "kafka admin")
        return try makeHandle(RD_KAFKA_PRODUCER, conf, component: "kafka admin")
    }
}
