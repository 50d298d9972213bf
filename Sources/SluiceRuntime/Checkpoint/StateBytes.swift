/// Little-endian binary encoding of operator state in a checkpoint: fixed-width integers and
/// length-prefixed byte strings. `StateWriter` appends; `StateReader` reads and reports a short
/// or malformed buffer as `CheckpointError` (never traps).
struct StateWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func count(_ n: Int) { u32(UInt32(truncatingIfNeeded: n)) }
    mutating func data(_ b: [UInt8]) { count(b.count); bytes.append(contentsOf: b) }
    mutating func optionalData(_ b: [UInt8]?) {
        if let b { u8(1); data(b) } else { u8(0) }
    }
}

struct StateReader {
    private let bytes: [UInt8]
    private(set) var offset: Int
    private let end: Int

    init(_ bytes: [UInt8], from: Int = 0, to: Int? = nil) {
        self.bytes = bytes; self.offset = from; self.end = to ?? bytes.count
    }

    var atEnd: Bool { offset >= end }

    private mutating func need(_ n: Int) throws(CheckpointError) {
        guard n >= 0, end - offset >= n else { throw CheckpointError.malformed("state ends early at byte \(offset) (needs \(n) more)") }
    }
    mutating func u8() throws(CheckpointError) -> UInt8 {
        try need(1); defer { offset += 1 }; return bytes[offset]
    }
    mutating func u32() throws(CheckpointError) -> UInt32 {
        try need(4)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
        offset += 4
        return v
    }
    mutating func u64() throws(CheckpointError) -> UInt64 {
        try need(8)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        offset += 8
        return v
    }
    mutating func i64() throws(CheckpointError) -> Int64 { Int64(bitPattern: try u64()) }
    mutating func f64() throws(CheckpointError) -> Double { Double(bitPattern: try u64()) }
    /// A count, checked against what is left (each item takes at least `minItemBytes`).
    mutating func count(minItemBytes: Int = 1) throws(CheckpointError) -> Int {
        let n = Int(try u32())
        try need(n * max(0, minItemBytes) > end - offset ? Int.max : 0)
        return n
    }
    mutating func data() throws(CheckpointError) -> [UInt8] {
        let n = Int(try u32())
        try need(n)
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }
    mutating func optionalData() throws(CheckpointError) -> [UInt8]? {
        try u8() == 0 ? nil : try data()
    }
}
