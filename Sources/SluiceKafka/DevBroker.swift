import CRdKafka
import Foundation

/// A local Kafka cluster for development and tests: librdkafka's built-in mock cluster
/// (`rdkafka_mock.h`), a real Kafka wire-protocol broker listening on 127.0.0.1 that other
/// processes can use (produce, fetch, consumer groups, offset commits), with fault injection.
///
/// Limits of librdkafka 2.0.2's mock: plaintext only; each partition keeps at most ~5 MiB or
/// 100k message sets (older data is evicted); broker ports are chosen by the OS (2.0.2 has
/// no port option), so `bootstrap` is the authoritative address. Broker ids are 1...N.
///
/// Thread safety: every call takes `lock`, which guards the producer handle and the mock cluster
/// (the mock cluster itself runs on its own librdkafka thread).
public final class DevBroker: @unchecked Sendable {
    /// `host:port,host:port` of the brokers, to pass as `bootstrap.servers`.
    public let bootstrap: String
    /// Number of brokers.
    public let brokerCount: Int
    private let lock = NSLock()
    private var rk: OpaquePointer?
    private var cluster: OpaquePointer?
    private let callbacks: LogBox

    /// Starts a mock cluster with `brokers` brokers. `log` receives librdkafka's log lines.
    public init(brokers: Int = 1, log: @escaping KafkaLog = { _, _ in }) throws(KafkaError) {
        guard (1...64).contains(brokers) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: "dev kafka: --brokers must be 1...64")
        }
        let box = LogBox(log: log)
        let conf = try makeConf([("client.id", "sluice-dev-kafka")], component: "dev kafka")
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(box).toOpaque())
        rd_kafka_conf_set_log_cb(conf, devLogCallback)
        let rk = try makeHandle(RD_KAFKA_PRODUCER, conf, component: "dev kafka")
        guard let cluster = rd_kafka_mock_cluster_new(rk, Int32(brokers)) else {
            rd_kafka_destroy(rk)
            throw KafkaError(code: RD_KAFKA_RESP_ERR__FAIL.rawValue, message: "dev kafka: could not create the mock cluster (see log)")
        }
        self.callbacks = box
        self.rk = rk
        self.cluster = cluster
        self.brokerCount = brokers
        self.bootstrap = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit { shutdown() }

    /// Stops the brokers. Idempotent.
    public func shutdown() {
        lock.lock(); defer { lock.unlock() }
        if let cluster { rd_kafka_mock_cluster_destroy(cluster) }
        if let rk { rd_kafka_destroy(rk) }
        cluster = nil; rk = nil
    }

    private func withCluster(_ what: String, _ body: (OpaquePointer) -> rd_kafka_resp_err_t) throws(KafkaError) {
        lock.lock(); defer { lock.unlock() }
        guard let cluster else { throw KafkaError(code: RD_KAFKA_RESP_ERR__DESTROY.rawValue, message: "\(what): the cluster is stopped") }
        let err = body(cluster)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, what) }
    }

    /// Creates a topic (replication factor min(3, brokers)).
    public func createTopic(_ name: String, partitions: Int32) throws(KafkaError) {
        guard partitions > 0, !name.isEmpty else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: "topic \(name): needs a name and partitions >= 1")
        }
        let rf = Int32(min(3, brokerCount))
        try withCluster("topic \(name)") { rd_kafka_mock_topic_create($0, name, partitions, rf) }
    }

    /// Disconnects a broker (-1 = all) and refuses new connections. Does not move partition leadership.
    public func setDown(broker: Int32) throws(KafkaError) {
        try checkBroker(broker)
        try withCluster("down \(broker)") { rd_kafka_mock_broker_set_down($0, broker) }
    }

    /// Lets a broker (-1 = all) accept connections again.
    public func setUp(broker: Int32) throws(KafkaError) {
        try checkBroker(broker)
        try withCluster("up \(broker)") { rd_kafka_mock_broker_set_up($0, broker) }
    }

    /// Delays every response of a broker (-1 = all) by `milliseconds`.
    public func setRoundTrip(broker: Int32, milliseconds: Int32) throws(KafkaError) {
        try checkBroker(broker)
        try withCluster("rtt \(broker)") { rd_kafka_mock_broker_set_rtt($0, broker, milliseconds) }
    }

    /// Makes the next `count` requests of type `apiKey` (0 = Produce, 1 = Fetch, ...) fail with `error`.
    public func pushRequestErrors(apiKey: Int16, count: Int, error: Int32) throws(KafkaError) {
        guard count > 0 && count <= 100_000 else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: "errors: count must be 1...100000")
        }
        let errors = [rd_kafka_resp_err_t](repeating: rd_kafka_resp_err_t(rawValue: error), count: count)
        lock.lock(); defer { lock.unlock() }
        guard let cluster else { throw KafkaError(code: RD_KAFKA_RESP_ERR__DESTROY.rawValue, message: "errors: the cluster is stopped") }
        errors.withUnsafeBufferPointer { rd_kafka_mock_push_request_errors_array(cluster, apiKey, count, $0.baseAddress) }
    }

    private func checkBroker(_ id: Int32) throws(KafkaError) {
        guard id == -1 || (1...Int32(brokerCount)).contains(id) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: "no broker \(id) (ids are 1...\(brokerCount), -1 = all)")
        }
    }

    /// Kafka API keys by name, for the `errors` command.
    public static let apiKeys: [String: Int16] = [
        "produce": 0, "fetch": 1, "listoffsets": 2, "metadata": 3, "offsetcommit": 8, "offsetfetch": 9,
        "findcoordinator": 10, "joingroup": 11, "heartbeat": 12, "leavegroup": 13, "syncgroup": 14,
        "describegroups": 15, "listgroups": 16, "apiversions": 18, "createtopics": 19, "initproducerid": 22,
        "addpartitionstotxn": 24, "addoffsetstotxn": 25, "endtxn": 26, "txnoffsetcommit": 28,
        "offsetforleaderepoch": 23,
    ]

    /// Runs one text command and returns its one-line answer, `ok` or `error: ...`:
    ///
    /// - `down ID` / `up ID`: broker ID (1...N, -1 = all) refuses / accepts connections
    /// - `rtt ID MS`: delay broker ID's responses by MS milliseconds
    /// - `errors APIKEY COUNT ERRCODE`: the next COUNT requests of APIKEY (number or name,
    ///   e.g. `0` or `Produce`) fail with ERRCODE (number or name, e.g. `7` or `REQUEST_TIMED_OUT`)
    /// - `topic NAME PARTITIONS`: create a topic
    /// - `bootstrap`: answers `ok BOOTSTRAP`
    public func execute(_ line: String) -> String {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let command = words.first?.lowercased() else { return "error: empty command" }
        let args = Array(words.dropFirst())
        func int<T: FixedWidthInteger>(_ i: Int, _ what: String, as: T.Type = T.self) throws(KafkaError) -> T {
            guard i < args.count, let v = T(args[i]) else {
                throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: "\(command): \(what) must be an integer")
            }
            return v
        }
        func arity(_ n: Int, _ usage: String) throws(KafkaError) {
            if args.count != n { throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: "usage: \(usage)") }
        }
        do throws(KafkaError) {
            switch command {
            case "down":
                try arity(1, "down ID")
                try setDown(broker: try int(0, "ID"))
            case "up":
                try arity(1, "up ID")
                try setUp(broker: try int(0, "ID"))
            case "rtt":
                try arity(2, "rtt ID MS")
                try setRoundTrip(broker: try int(0, "ID"), milliseconds: try int(1, "MS"))
            case "errors":
                try arity(3, "errors APIKEY COUNT ERRCODE")
                guard let key = Int16(args[0]) ?? Self.apiKeys[args[0].lowercased()] else {
                    return "error: unknown API key '\(args[0])' (a number, or one of \(Self.apiKeys.keys.sorted().joined(separator: ", ")))"
                }
                guard let code = KafkaError.code(named: args[2]) else { return "error: unknown error code '\(args[2])'" }
                try pushRequestErrors(apiKey: key, count: try int(1, "COUNT"), error: code)
            case "topic":
                try arity(2, "topic NAME PARTITIONS")
                try createTopic(args[0], partitions: try int(1, "PARTITIONS"))
            case "bootstrap":
                return "ok \(bootstrap)"
            default:
                return "error: unknown command '\(command)' (down, up, rtt, errors, topic, bootstrap)"
            }
        } catch {
            return "error: \(error.message)"
        }
        return "ok"
    }
}

/// Holds a log closure for librdkafka's log callback (immutable, so safe from any thread).
final class LogBox: Sendable {
    let log: KafkaLog
    init(log: @escaping KafkaLog) { self.log = log }
}

private let devLogCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = { rk, level, fac, buf in
    guard let rk, let opaque = rd_kafka_opaque(rk), let buf else { return }
    let box = Unmanaged<LogBox>.fromOpaque(opaque).takeUnretainedValue()
    let facility = fac.map { String(cString: $0) } ?? ""
    box.log(levelName(level), "\(facility): \(String(cString: buf))")
}
