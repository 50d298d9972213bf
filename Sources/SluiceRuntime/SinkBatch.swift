import SluiceCore

/// Encoded events bound for one sink: payloads back to back, each followed by a newline.
struct SinkBatch: Sendable {
    var data: [UInt8] = []
    /// End offset (exclusive, after the newline) of each event in `data`.
    var ends: [Int] = []

    var count: Int { ends.count }
    var isEmpty: Bool { ends.isEmpty }

    mutating func append<C: Collection>(_ payload: C) where C.Element == UInt8 {
        data.append(contentsOf: payload)
        data.append(0x0A)
        ends.append(data.count)
    }

    /// Payloads without their newlines, e.g. to dead-letter them.
    var payloads: [[UInt8]] {
        var start = 0
        return ends.map { end in
            defer { start = end }
            return Array(data[start..<(end - 1)])
        }
    }
}
