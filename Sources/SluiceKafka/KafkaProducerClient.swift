import CRdKafka
import Foundation
import Synchronization
import SluiceCore

/// Settings of a Kafka sink's producer.
public struct KafkaProducerConfig: Sendable {
    /// `bootstrap.servers`.
    public var brokers: String
    /// librdkafka properties, applied verbatim after Sluice's defaults (so they win).
    public var options: [String: String]
    /// In-flight bound in messages (`queue.buffering.max.messages`). When reached, `produce` waits for
    /// delivery reports: that is the sink's backpressure.
    public var maxInFlight: Int
    /// In-flight bound in KiB (`queue.buffering.max.kbytes`, librdkafka's own default is 1 GiB).
    public var maxInFlightKBytes: Int
    /// `message.timeout.ms` (= `delivery.timeout.ms`): how long librdkafka retries a message before its
    /// completion reports a failure. nil keeps librdkafka's default (300000 ms).
    public var deliveryTimeoutMs: Int?
    /// How long a batch waits for more records (`linger.ms`, from `settings.linger`, default 5 ms).
    public var lingerMs: Int64

    public init(brokers: String, options: [String: String] = [:], maxInFlight: Int = 10_000,
                maxInFlightKBytes: Int = 64 * 1024, deliveryTimeoutMs: Int? = nil, lingerMs: Int64 = 5) {
        self.brokers = brokers; self.options = options; self.maxInFlight = maxInFlight
        self.maxInFlightKBytes = maxInFlightKBytes; self.deliveryTimeoutMs = deliveryTimeoutMs
        self.lingerMs = lingerMs
    }
}

/// One record to produce.
public struct KafkaMessage: Sendable, Equatable {
    /// The value; often a slice of a buffer shared by a batch's messages (librdkafka copies it).
    public var value: ArraySlice<UInt8>
    public var key: ArraySlice<UInt8>?
    public var headers: [EventMeta.Header]
    /// Milliseconds since the epoch; nil = now (set by librdkafka).
    public var timestamp: Int64?
    /// Explicit partition; nil = chosen by the partitioner (from the key; `partitioner`, default consistent_random).
    public var partition: Int32?
    /// A tombstone: the record has a NULL value (`value` is ignored), which deletes its key from a compacted topic.
    public var tombstone = false

    public init(value: [UInt8], key: [UInt8]? = nil, headers: [EventMeta.Header] = [],
                timestamp: Int64? = nil, partition: Int32? = nil) {
        self.init(slice: value[...], key: key?[...], headers: headers, timestamp: timestamp, partition: partition)
    }

    /// A record whose value and key are slices (of buffers shared by a batch, say: nothing is copied here).
    public init(slice value: ArraySlice<UInt8>, key: ArraySlice<UInt8>? = nil, headers: [EventMeta.Header] = [],
                timestamp: Int64? = nil, partition: Int32? = nil) {
        self.value = value; self.key = key; self.headers = headers; self.timestamp = timestamp; self.partition = partition
    }

    /// A record from an event: its payload bytes as the value, the given key (e.g. from a `KeyTemplate`;
    /// nil falls back to the event's Kafka key, if any), and the event's headers and timestamp.
    public init(event: Event, key: [UInt8]?) {
        self.init(slice: event.bytes, key: (key ?? event.meta?.key)?[...], headers: event.meta?.headers ?? [],
                  timestamp: event.meta?.timestamp)
    }
}

/// Where a record was written.
public struct KafkaDelivery: Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}

/// Counters of a producer.
public struct KafkaProducerStats: Sendable, Equatable {
    /// Messages accepted by librdkafka and not yet reported.
    public var inFlight = 0
    public var delivered = 0
    public var failed = 0
    /// Times `produce` had to wait because `maxInFlight` was reached.
    public var queueFullWaits = 0
    /// Times the handle was recreated after a fatal error.
    public var recreated = 0
}

/// An idempotent Kafka producer for a Sluice sink (`enable.idempotence=true`, `acks=all`).
///
/// **Completions.** `produce` calls `completion(index, result)` exactly once per message: `.success` with
/// the partition and offset once the broker acknowledged it, or `.failure` with a permanent error —
/// librdkafka itself retries retriable errors until `message.timeout.ms` runs out, so a failure means
/// "give up or dead-letter" (after a timeout the message is *possibly* persisted: a resend may duplicate).
/// Completions run on the producer's poll thread, except for messages rejected at once (too large,
/// producer closed), whose completion runs on the calling thread before `produce` returns. A completion
/// must be quick and must not call `produce`, `flush` or `close`.
///
/// **Backpressure.** At most `maxInFlight` messages are queued; when full (`_QUEUE_FULL`), `produce`
/// blocks until delivery reports free room. Call it from a thread that may block (the sink's).
///
/// **Threads.** A dedicated thread serves `rd_kafka_poll` (delivery reports, errors). `produce` may be called
/// from any thread. After a fatal error (`rd_kafka_fatal_error`, e.g. an idempotence sequence failure) the
/// poll thread creates a new handle, fails what the old one still held (their completions get the error),
/// and logs it; later `produce` calls use the new handle.
///
/// **Lifetime.** Always call `close()`: the poll thread keeps the producer alive until then.
public final class KafkaProducerClient: @unchecked Sendable {
    // `condition` guards `handle`, `closed`, `stats`: produceva runs while holding it, so the handle cannot
    // be swapped (only by the poll thread) or destroyed (only by close, after the poll thread ended) meanwhile.
    // rd_kafka_poll runs on the poll thread without the lock (librdkafka allows it concurrently with produce).
    private let condition = NSCondition()
    private var handle: OpaquePointer?
    private var closed = false
    private var stopping = false
    private var statsValue = KafkaProducerStats()
    private let pollDone = DispatchSemaphore(value: 0)
    private let core: ProducerCore
    /// The librdkafka properties it was created with (Sluice's defaults, then `options`).
    let settings: [(String, String)]
    public let config: KafkaProducerConfig

    /// Creates the producer and starts its poll thread. Throws on invalid configuration.
    public init(config: KafkaProducerConfig, log: @escaping KafkaLog) throws(KafkaError) {
        self.config = config
        var settings: [(String, String)] = [
            ("bootstrap.servers", config.brokers),
            ("client.id", "sluice"),
            ("enable.idempotence", "true"),
            ("acks", "all"),
            // A batch waits at most `settings.linger` for more records: low latency at a low rate;
            // under load the batches fill before that.
            ("linger.ms", String(max(0, config.lingerMs))),
            ("queue.buffering.max.messages", String(max(1, config.maxInFlight))),
            ("queue.buffering.max.kbytes", String(max(1, config.maxInFlightKBytes))),
        ]
        if let t = config.deliveryTimeoutMs { settings.append(("message.timeout.ms", String(t))) }
        for (key, value) in config.options.sorted(by: { $0.key < $1.key }) { settings.append((key, value)) }
        self.settings = settings
        let core = ProducerCore(log: log)
        self.core = core
        let rk = try Self.makeProducer(settings, core: core)
        self.handle = rk
        log("info", "kafka producer: librdkafka \(librdkafkaVersion), brokers \(config.brokers), idempotent")
        let thread = Thread { [self] in self.pollLoop() }
        thread.name = "sluice-kafka-producer"
        thread.start()
    }

    deinit {
        // close() normally ran already; the poll thread holds `self` while running, so we get here only after it ended.
        if let handle {
            rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
            rd_kafka_destroy(handle)
        }
    }

    private static func makeProducer(_ settings: [(String, String)], core: ProducerCore) throws(KafkaError) -> OpaquePointer {
        let conf = try makeConf(settings, component: "kafka producer")
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(core).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(conf, producerDeliveryCallback)
        rd_kafka_conf_set_error_cb(conf, producerErrorCallback)
        rd_kafka_conf_set_log_cb(conf, producerLogCallback)
        return try makeHandle(RD_KAFKA_PRODUCER, conf, component: "kafka producer")
    }

    /// Counters.
    public var stats: KafkaProducerStats {
        condition.lock(); defer { condition.unlock() }
        return statsValue
    }

    /// Queues `messages` for `topic`; blocks while `maxInFlight` messages are in flight.
    /// `completion(index, result)` is called exactly once per message (index into `messages`).
    public func produce(_ messages: [KafkaMessage], topic: String,
                        completion: @escaping @Sendable (_ index: Int, _ result: Result<KafkaDelivery, KafkaError>) -> Void) {
        produce(messages, DeliveryBatch.start(count: messages.count, topic: topic, each: completion, all: nil))
    }

    /// Queues `messages` for `topic` like `produce(_:topic:completion:)`, but reports once for the
    /// whole batch: `done(failures)` runs after the last message's report, with the failed messages'
    /// indexes and errors in index order (empty: every message was delivered).
    public func produce(_ messages: [KafkaMessage], topic: String,
                        done: @escaping @Sendable (_ failures: [(index: Int, error: KafkaError)]) -> Void) {
        produce(messages, DeliveryBatch.start(count: messages.count, topic: topic, each: nil, all: done))
    }

    private func produce(_ messages: [KafkaMessage], _ batch: DeliveryBatch) {
        defer { batch.release() }
        batch.topic.withCString { ctopic in
            withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 8) { vus in
                for (index, message) in messages.enumerated() {
                    var failure: KafkaError?
                    condition.lock()
                    while true {
                        guard !closed, let rk = handle else {
                            failure = KafkaError(code: RD_KAFKA_RESP_ERR__DESTROY.rawValue, message: "kafka producer: closed")
                            break
                        }
                        let err = Self.enqueue(rk, ctopic, message, batch.opaque(index), vus)
                        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                            statsValue.inFlight += 1
                            break
                        }
                        if err == RD_KAFKA_RESP_ERR__QUEUE_FULL || err == RD_KAFKA_RESP_ERR__FATAL {
                            // Full: wait for delivery reports. Fatal: wait for the poll thread to recreate the handle.
                            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL { statsValue.queueFullWaits += 1 }
                            _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05))
                            continue
                        }
                        failure = KafkaError(err, "kafka producer: cannot produce to \(batch.topic)")
                        break
                    }
                    if failure != nil { statsValue.failed += 1 }
                    condition.unlock()
                    if let failure { batch.done(index, .failure(failure)) }
                }
            }
        }
    }

    /// One `rd_kafka_produceva` call (payload and key copied by librdkafka); `vus` is scratch for its arguments.
    private static func enqueue(_ rk: OpaquePointer, _ topic: UnsafePointer<CChar>, _ m: KafkaMessage,
                                _ opaque: UnsafeMutableRawPointer, _ vus: UnsafeMutableBufferPointer<rd_kafka_vu_t>) -> rd_kafka_resp_err_t {
        var hdrs: OpaquePointer?
        if !m.headers.isEmpty {
            hdrs = rd_kafka_headers_new(m.headers.count)
            for h in m.headers {
                h.value.withUnsafeBytes { v in _ = rd_kafka_header_add(hdrs, h.name, -1, v.baseAddress, v.count) }
            }
        }
        let err: rd_kafka_resp_err_t = m.value.withUnsafeBytes { value in
            withOptionalBytes(m.key) { key in
                var n = 0
                func add(_ type: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t) -> Void) {
                    vus[n] = rd_kafka_vu_t()
                    vus[n].vtype = type
                    fill(&vus[n])
                    n += 1
                }
                add(RD_KAFKA_VTYPE_TOPIC) { $0.u.cstr = topic }
                if !m.tombstone {
                    add(RD_KAFKA_VTYPE_VALUE) {
                        $0.u.mem.ptr = value.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) }
                        $0.u.mem.size = value.count
                    }
                }
                if let key {
                    add(RD_KAFKA_VTYPE_KEY) {
                        $0.u.mem.ptr = key.baseAddress.map { UnsafeMutableRawPointer(mutating: $0) }
                        $0.u.mem.size = key.count
                    }
                }
                add(RD_KAFKA_VTYPE_OPAQUE) { $0.u.ptr = opaque }
                add(RD_KAFKA_VTYPE_MSGFLAGS) { $0.u.i = RD_KAFKA_MSG_F_COPY }
                if let ts = m.timestamp { add(RD_KAFKA_VTYPE_TIMESTAMP) { $0.u.i64 = ts } }
                if let p = m.partition { add(RD_KAFKA_VTYPE_PARTITION) { $0.u.i32 = p } }
                if let hdrs { add(RD_KAFKA_VTYPE_HEADERS) { $0.u.headers = hdrs } }
                guard let error = rd_kafka_produceva(rk, vus.baseAddress, n) else { return RD_KAFKA_RESP_ERR_NO_ERROR }
                let code = rd_kafka_error_code(error)
                rd_kafka_error_destroy(error)
                return code
            }
        }
        // On failure the headers were not taken over by the message.
        if err != RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs { rd_kafka_headers_destroy(hdrs) }
        return err
    }

    /// Waits until every queued message has been reported (completions have run), or `timeout` seconds.
    /// Returns true if nothing is left in flight.
    @discardableResult
    public func flush(timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock(); defer { condition.unlock() }
        while statsValue.inFlight > 0 {
            if !condition.wait(until: deadline) { return statsValue.inFlight == 0 }
        }
        return true
    }

    /// Flushes for up to `timeout` seconds, then fails whatever is still queued (those completions get
    /// `_PURGE_QUEUE`/`_PURGE_INFLIGHT` errors), stops the poll thread and destroys the handle.
    /// Later `produce` calls fail at once. Idempotent; do not call from a completion.
    public func close(timeout: Double = 30) {
        condition.lock()
        if closed { condition.unlock(); return }
        condition.unlock()
        flush(timeout: timeout)
        condition.lock()
        closed = true
        stopping = true
        condition.broadcast()
        condition.unlock()
        pollDone.wait()
        condition.lock()
        let rk = handle
        handle = nil
        condition.unlock()
        if let rk { Self.drain(rk, core: core) }
        settle()
        core.log("info", "kafka producer: closed")
    }

    /// Fails every message the handle still holds, serves their delivery reports, and destroys it.
    private static func drain(_ rk: OpaquePointer, core: ProducerCore) {
        rd_kafka_purge(rk, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        var rounds = 0
        while rd_kafka_outq_len(rk) > 0 && rounds < 100 {
            rd_kafka_poll(rk, 50)
            rounds += 1
        }
        rd_kafka_poll(rk, 0)
        rd_kafka_destroy(rk)
    }

    // MARK: poll thread

    private func pollLoop() {
        defer { pollDone.signal() }
        while true {
            condition.lock()
            let rk = handle
            let stop = stopping
            condition.unlock()
            guard let rk, !stop else { return }
            rd_kafka_poll(rk, 100)
            settle()
            if core.takeFatal() { recreate(rk) }
        }
    }

    /// Replaces a handle that raised a fatal error (poll thread only).
    private func recreate(_ old: OpaquePointer) {
        var buf = [CChar](repeating: 0, count: 512)
        let err = rd_kafka_fatal_error(old, &buf, buf.count)
        let reason = "\(KafkaError.describe(err)): \(cString(buf))"
        while true {
            do {
                let fresh = try Self.makeProducer(settings, core: core)
                condition.lock()
                handle = fresh
                statsValue.recreated += 1
                condition.broadcast()
                condition.unlock()
                core.log("error", "kafka producer: fatal error \(reason); created a new producer (messages still queued in the old one fail)")
                break
            } catch {
                core.log("error", "kafka producer: fatal error \(reason); cannot create a new producer: \(error); retrying in 1 s")
                condition.lock()
                let stop = stopping
                condition.unlock()
                if stop { return }
                Thread.sleep(forTimeInterval: 1)
            }
        }
        Self.drain(old, core: core)
        settle()
    }

    /// Takes the reports counted since the last call into the stats and wakes `produce` and `flush`
    /// waiters: once per `rd_kafka_poll` (whose callbacks all ran by then), not once per message.
    private func settle() {
        let (delivered, failed) = core.takeReported()
        guard delivered + failed > 0 else { return }
        condition.lock()
        statsValue.inFlight -= delivered + failed
        statsValue.delivered += delivered
        statsValue.failed += failed
        condition.broadcast()
        condition.unlock()
    }

    /// Testing hook: makes librdkafka raise a fatal error on the current handle (`rd_kafka_test_fatal_error`).
    func injectFatalErrorForTesting() {
        condition.lock(); defer { condition.unlock() }
        if let handle { _ = rd_kafka_test_fatal_error(handle, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, "injected by a test") }
    }
}

private func withOptionalBytes<R>(_ bytes: ArraySlice<UInt8>?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

/// What librdkafka callbacks see (conf opaque): immutable but for `fatal` and the report counts, which are atomic.
final class ProducerCore: @unchecked Sendable {
    let log: KafkaLog
    private let fatal = Atomic<Bool>(false)
    init(log: @escaping KafkaLog) { self.log = log }
    func setFatal() { fatal.store(true, ordering: .releasing) }
    func takeFatal() -> Bool { fatal.exchange(false, ordering: .acquiringAndReleasing) }
    /// Delivery reports served and not yet taken into the producer's stats (`settle`).
    private let delivered = Atomic<Int>(0)
    private let failed = Atomic<Int>(0)
    func reported(success: Bool) {
        if success { delivered.add(1, ordering: .relaxed) } else { failed.add(1, ordering: .relaxed) }
    }
    func takeReported() -> (delivered: Int, failed: Int) {
        (delivered.exchange(0, ordering: .acquiringAndReleasing), failed.exchange(0, ordering: .acquiringAndReleasing))
    }
}

func producerCore(_ opaque: UnsafeMutableRawPointer?) -> ProducerCore? {
    opaque.map { Unmanaged<ProducerCore>.fromOpaque($0).takeUnretainedValue() }
}

private let producerErrorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = { _, err, reason, opaque in
    guard let core = producerCore(opaque) else { return }
    let code = rd_kafka_resp_err_t(rawValue: err)
    if code == RD_KAFKA_RESP_ERR__FATAL {
        core.setFatal()
        return
    }
    let text = reason.map { String(cString: $0) } ?? ""
    // Transport failures were already logged by librdkafka's own log line.
    let level = code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ? "error" : code == RD_KAFKA_RESP_ERR__TRANSPORT ? "debug" : "warning"
    core.log(level, "kafka producer: \(KafkaError.describe(code)): \(text)")
}

private let producerLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = { rk, level, fac, buf in
    guard let rk, let buf, let core = producerCore(rd_kafka_opaque(rk)) else { return }
    let facility = fac.map { String(cString: $0) } ?? ""
    core.log(levelName(level), "kafka producer: \(facility): \(String(cString: buf))")
}
