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
        var messages: [KafkaMessage] = []
        messages.reserveCapacity(batch.count)
        let restating = restatement?.headerValue
        for i in 0..<batch.count {
            let value = Array(batch.payload(i))
            let meta = batch.meta(i)
            var headers = meta?.headers ?? []
            if let restating { headers.removeAll { $0.name == Restatement.header }; headers.append(restating) }
            messages.append(KafkaMessage(value: value, key: key?.render(value), headers: headers,
                                         timestamp: meta?.timestamp))
        }
        let tracker = DeliveryTracker(count: messages.count, done: done)
        producer.produce(messages, topic: topic) { index, result in
            if case .failure(let error) = result { tracker.fail(index, "kafka: \(error)") } else { tracker.succeed() }
        }
    }

    func close() {
        producer.close()
    }
}

/// Collects per-message delivery reports of one batch and reports once all are in.
private final class DeliveryTracker: Sendable {
    private struct State { var remaining: Int; var failures: [DeliveryFailure] = [] }
    private let state: Mutex<State>
    private let done: @Sendable ([DeliveryFailure]) -> Void

    init(count: Int, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
        state = Mutex(State(remaining: count))
        self.done = done
        if count == 0 { done([]) }
    }

    func succeed() { finishOne(nil) }
    func fail(_ index: Int, _ reason: String) { finishOne(DeliveryFailure(index: index, reason: reason)) }

    private func finishOne(_ failure: DeliveryFailure?) {
        let finished: [DeliveryFailure]? = state.withLock { s in
            if let failure { s.failures.append(failure) }
            s.remaining -= 1
            return s.remaining == 0 ? s.failures : nil
        }
        if let finished { done(finished) }
    }
}
