import Foundation
import Synchronization
import SluiceCore
import SluiceKafka
import SluiceSpec

/// `kafka:` sink: an idempotent producer (acks=all). Each event becomes a message with the key
/// rendered from the template and the source event's headers and timestamp passed through.
/// Retriable errors are retried by librdkafka; permanent ones are reported as failures.
final class KafkaOutput: SinkOutput {
    let sink: String
    let topic: String
    let key: KeyTemplate?
    let producer: KafkaProducerClient
    /// After `sluice rewind`: messages carry the `sluice-restatement` header while it has a label.
    let restatement: Restatement?

    init(sink: String, spec: KafkaSinkSpec, restatement: Restatement? = nil, lingerMs: Int64 = 5,
         log: @escaping @Sendable (String, String) -> Void) throws(SinkError) {
        self.sink = sink
        self.restatement = restatement
        self.topic = spec.topic
        do {
            key = try spec.key.map { t throws(KeyTemplateError) in try KeyTemplate(t) }
        } catch {
            throw SinkError(sink: sink, message: "\(error)")
        }
        do {
            producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: spec.brokers, options: spec.options, lingerMs: lingerMs)) { level, message in
                log(level, "sink '\(sink)': \(message)")
            }
        } catch {
            throw SinkError(sink: sink, message: "\(error)")
        }
    }

    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
        // Values are slices of the batch's buffer and keys of one buffer of all keys: librdkafka copies
        // both (RD_KAFKA_MSG_F_COPY), so nothing is copied per message here.
        var keys: [UInt8] = []
        var keyEnds: [Int] = []
        if let key {
            keys.reserveCapacity(batch.count * 24)
            keyEnds.reserveCapacity(batch.count)
            for i in 0..<batch.count {
                key.render(batch.payload(i), distinctKeys: batch.hasDistinctKeys(i), appendingTo: &keys)
                keyEnds.append(keys.count)
            }
        }
        var messages: [KafkaMessage] = []
        messages.reserveCapacity(batch.count)
        let restating = restatement?.headerValue
        for i in 0..<batch.count {
            let meta = batch.meta(i)
            var headers = meta?.headers ?? []
            if let restating { headers.removeAll { $0.name == Restatement.header }; headers.append(restating) }
            let k: ArraySlice<UInt8>? = key == nil ? nil : keys[(i == 0 ? 0 : keyEnds[i - 1])..<keyEnds[i]]
            messages.append(KafkaMessage(slice: batch.payload(i), key: k, headers: headers, timestamp: meta?.timestamp))
        }
        producer.produce(messages, topic: topic) { failures in
            done(failures.map { DeliveryFailure(index: $0.index, reason: "kafka: \($0.error)") })
        }
    }

    func close() {
        producer.close()
    }
}
