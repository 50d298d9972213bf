import Foundation

/// `GET /topology` as `sluice top` reads it (the fields it shows; others are ignored).
struct TopologySnapshot: Decodable, Sendable {
    struct Queue: Decodable, Sendable {
        var used: Int
        var capacity: Int
        var fill: Double
    }

    struct Operator: Decodable, Sendable {
        var keys: Int
        var state_bytes: Int
        var watermark_ms: Int64?
        var late: Int
    }

    struct Partition: Decodable, Sendable {
        var topic: String
        var partition: Int
        var lag: Int64?
    }

    struct Kafka: Decodable, Sendable {
        var paused: Bool
        var partitions: [Partition]
    }

    struct Node: Decodable, Sendable {
        var name: String
        var kind: String
        var stage: Int?
        var received: Int
        var emitted: Int
        var dead_lettered: Int
        var dropped: Int
        var in_per_s: Double
        var out_per_s: Double
        var queue: Queue?
        var `operator`: Operator?
        var kafka: Kafka?
    }

    struct UDF: Decodable, Sendable {
        var version: Int
        var last_reload_error: String?
    }

    var pipeline: String
    var phase: String
    var udf: UDF
    var nodes: [Node]
}
