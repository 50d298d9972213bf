import CRdKafka

/// A Kafka client error: librdkafka's error code (`rd_kafka_resp_err_t`, negative codes are
/// local to the client, positive ones come from the broker), its symbolic name and a message.
public struct KafkaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The raw `rd_kafka_resp_err_t` value (0 = no error, e.g. -185 = `_TIMED_OUT`, -184 = `_QUEUE_FULL`).
    public var code: Int32
    /// A human message with context.
    public var message: String
    /// True for librdkafka fatal errors (the handle is unusable and must be recreated).
    public var isFatal: Bool

    public init(code: Int32, message: String, isFatal: Bool = false) {
        self.code = code; self.message = message; self.isFatal = isFatal
    }

    init(_ err: rd_kafka_resp_err_t, _ context: String) {
        self.init(code: err.rawValue, message: "\(context): \(KafkaError.describe(err))")
    }

    /// The librdkafka name of the code, e.g. `_MSG_TIMED_OUT` or `NOT_ENOUGH_REPLICAS`.
    public var name: String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code))) }
    public var description: String { message }

    static func describe(_ err: rd_kafka_resp_err_t) -> String {
        "\(String(cString: rd_kafka_err2str(err))) (\(String(cString: rd_kafka_err2name(err))))"
    }

    /// Looks up an error code by number (`6`, `-185`) or name (`NOT_LEADER_FOR_PARTITION`,
    /// `_TRANSPORT`, `RD_KAFKA_RESP_ERR__TRANSPORT`), case-insensitively.
    public static func code(named text: String) -> Int32? {
        if let n = Int32(text) { return n }
        var name = text.uppercased()
        if name.hasPrefix("RD_KAFKA_RESP_ERR_") { name.removeFirst("RD_KAFKA_RESP_ERR_".count) }
        var descs: UnsafePointer<rd_kafka_err_desc>?
        var count = 0
        rd_kafka_get_err_descs(&descs, &count)
        guard let descs else { return nil }
        for i in 0..<count {
            guard let cname = descs[i].name else { continue }
            if String(cString: cname).uppercased() == name { return descs[i].code.rawValue }
        }
        return nil
    }
}

/// Log levels passed to a client's log closure: "debug", "info", "warning", "error".
/// The closure is called from librdkafka's internal threads and from the client's own thread.
public typealias KafkaLog = @Sendable (_ level: String, _ message: String) -> Void

/// librdkafka's version string, e.g. "2.0.2". Log it at start-up: broker compatibility depends on it.
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }

/// Maps syslog levels used by librdkafka to Sluice's level names.
func levelName(_ syslogLevel: Int32) -> String {
    switch syslogLevel {
    case ...3: return "error"
    case 4: return "warning"
    case 5, 6: return "info"
    default: return "debug"
    }
}

/// Builds an `rd_kafka_conf_t` from ordered settings (later entries override earlier ones).
/// On failure the conf is destroyed and an error naming the offending key is thrown.
func makeConf(_ settings: [(String, String)], component: String) throws(KafkaError) -> OpaquePointer {
    guard let conf = rd_kafka_conf_new() else {
        throw KafkaError(code: -1, message: "\(component): cannot allocate a librdkafka configuration")
    }
    var errbuf = [CChar](repeating: 0, count: 512)
    for (key, value) in settings {
        let res = rd_kafka_conf_set(conf, key, value, &errbuf, errbuf.count)
        if res != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            let text = String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue,
                             message: "\(component): option '\(key)': \(text)")
        }
    }
    return conf
}

/// Creates a handle from a conf. On success the handle owns the conf; on failure the conf is destroyed.
func makeHandle(_ type: rd_kafka_type_t, _ conf: OpaquePointer, component: String) throws(KafkaError) -> OpaquePointer {
    var errbuf = [CChar](repeating: 0, count: 512)
    guard let rk = rd_kafka_new(type, conf, &errbuf, errbuf.count) else {
        rd_kafka_conf_destroy(conf)
        let text = String(decoding: errbuf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: "\(component): \(text)")
    }
    return rk
}

/// Reads a C string buffer filled by librdkafka.
func cString(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Copies `len` bytes at `ptr` into an array (empty for NULL).
@inline(__always)
func bytes(_ ptr: UnsafeMutableRawPointer?, _ len: Int) -> [UInt8] {
    guard let ptr, len > 0 else { return [] }
    return Array(UnsafeRawBufferPointer(start: ptr, count: len))
}
