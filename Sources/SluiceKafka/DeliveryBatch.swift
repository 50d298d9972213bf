import CRdKafka
import Synchronization

/// The delivery reports of one `produce` call: one object and one slot array per batch, not a box
/// per message. Each message's `msg_opaque` points at its slot (the batch and the message's index).
///
/// Kept alive by one unmanaged retain taken in `produce` and dropped when the last report is in
/// (`remaining` starts at the message count plus one hold for `produce` itself, released once every
/// message was queued or failed). Reports arrive on the producer's poll thread, immediate failures on
/// the producing thread; `remaining` is atomic and the failures list is behind a lock.
final class DeliveryBatch {
    struct Slot {
        var batch: Unmanaged<DeliveryBatch>
        var index: Int
    }

    let topic: String
    /// Per message (the public per-message API), if any.
    let each: (@Sendable (Int, Result<KafkaDelivery, KafkaError>) -> Void)?
    /// Once, after the last report, with the failed messages (empty: all delivered).
    let all: (@Sendable ([(index: Int, error: KafkaError)]) -> Void)?
    private let remaining: Atomic<Int>
    private let failures = Mutex<[(index: Int, error: KafkaError)]>([])
    let slots: UnsafeMutablePointer<Slot>
    private let count: Int

    /// Creates the batch and takes its unmanaged retain; call `done` once per message and `release` once.
    static func start(count: Int, topic: String, each: (@Sendable (Int, Result<KafkaDelivery, KafkaError>) -> Void)?,
                      all: (@Sendable ([(index: Int, error: KafkaError)]) -> Void)?) -> DeliveryBatch {
        let batch = DeliveryBatch(count: count, topic: topic, each: each, all: all)
        let ref = Unmanaged.passRetained(batch)
        for i in 0..<count { (batch.slots + i).initialize(to: Slot(batch: ref, index: i)) }
        return batch
    }

    private init(count: Int, topic: String, each: (@Sendable (Int, Result<KafkaDelivery, KafkaError>) -> Void)?,
                 all: (@Sendable ([(index: Int, error: KafkaError)]) -> Void)?) {
        self.topic = topic; self.each = each; self.all = all; self.count = count
        remaining = Atomic(count + 1)
        slots = .allocate(capacity: max(1, count))
    }

    deinit {
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    /// The opaque pointer librdkafka carries for message `i`.
    func opaque(_ i: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(slots + i) }

    /// Message `index` was delivered.
    func delivered(_ index: Int, partition: Int32, offset: Int64) {
        each?(index, .success(KafkaDelivery(topic: topic, partition: partition, offset: offset)))
        finishOne()
    }

    /// Message `index` is done.
    func done(_ index: Int, _ result: Result<KafkaDelivery, KafkaError>) {
        if case .failure(let error) = result, all != nil { failures.withLock { $0.append((index, error)) } }
        each?(index, result)
        finishOne()
    }

    /// `produce` has queued (or failed) every message.
    func release() { finishOne() }

    private func finishOne() {
        guard remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
        if let all {
            let failed = failures.withLock { $0.sorted { $0.index < $1.index } }
            all(failed)
        }
        Unmanaged.passUnretained(self).release()
    }
}

/// librdkafka's delivery report callback: finds the message's slot and reports to its batch.
let producerDeliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = { _, msg, opaque in
    guard let msg, let priv = msg.pointee._private else { return }
    let slot = priv.assumingMemoryBound(to: DeliveryBatch.Slot.self).pointee
    let batch = slot.batch.takeUnretainedValue()
    let m = msg.pointee
    let ok = m.err == RD_KAFKA_RESP_ERR_NO_ERROR
    producerCore(opaque)?.reported(success: ok)
    if ok {
        batch.delivered(slot.index, partition: m.partition, offset: m.offset)
    } else {
        let status = rd_kafka_message_status(msg)
        let persisted = status == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED ? " (possibly persisted)" :
            status == RD_KAFKA_MSG_STATUS_PERSISTED ? " (persisted)" : ""
        batch.done(slot.index, .failure(KafkaError(m.err, "kafka producer: delivery to \(batch.topic) failed\(persisted)")))
    }
}
