import Foundation

/// What a checkpoint says about one source: where to resume and the watermark state of its inputs.
public struct SourceCheckpoint: Codable, Sendable, Equatable {
    public var name: String
    /// `file`, `kafka`, `stdin`, `generate` (only `file` and `kafka` resume from their position).
    public var kind: String
    public var file: FilePosition?
    public var kafka: [KafkaPosition]?
    /// Events read so far (every kind).
    public var events: Int64 = 0
    /// Largest event time seen per input (a Kafka partition, or the whole source with partition -1).
    public var inputs: [InputMark] = []
}

/// A file source's position: byte offset and line number after the last line read, and the
/// file's identity so that a replaced file is noticed.
public struct FilePosition: Codable, Sendable, Equatable {
    public var path: String
    public var offset: Int64
    public var line: Int64
    public var device: UInt64
    public var inode: UInt64
    /// CRC-32C of the file's first min(offset, 64 KiB) bytes and of the 4 KiB before `offset`, as hex.
    public var head: String
}

/// The next offset to read in one Kafka partition.
public struct KafkaPosition: Codable, Sendable, Equatable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}

/// Largest event time seen on one input of a source.
public struct InputMark: Codable, Sendable, Equatable {
    public var topic: String?
    public var partition: Int32
    public var maxSeen: Int64
}

/// The JSON header of a checkpoint file.
public struct CheckpointHeader: Codable, Sendable, Equatable {
    public var id: UInt64
    /// Wall-clock time the checkpoint completed, ms since the epoch.
    public var time: Int64
    public var pipeline: String
    public var udfVersion: Int
    /// FNV-1a 64 over the UDF directory's `.lua` files (names and contents), hex.
    public var udfHash: String
    /// Lookup table name -> version (refresh count and row count).
    public var lookups: [String: String]
    public var sources: [SourceCheckpoint]
    /// Taken while restating after a rewind: the restatement label.
    public var restatement: String?
}

/// One stage worker's state in a checkpoint.
struct StateSection: Sendable, Equatable {
    var op: String
    var lane: Int
    var bytes: [UInt8]
}

/// A checkpoint: header plus state sections. The file layout (version 1), little-endian:
///
///     "SLUICECK" | u32 version=1 | u32 n, n bytes header JSON | u32 sections |
///     per section: u32 n, operator name | u32 lane | u32 n, n state bytes |
///     u32 CRC-32C of every byte before it | "SLCKEND\n"
///
/// A file that is short, has extra bytes, a bad magic, version or checksum is malformed.
struct CheckpointFile: Sendable, Equatable {
    static let magic = Array("SLUICECK".utf8)
    static let trailer = Array("SLCKEND\n".utf8)
    static let version: UInt32 = 1

    var header: CheckpointHeader
    var sections: [StateSection]

    var stateBytes: Int { sections.reduce(0) { $0 + $1.bytes.count } }

    func encoded() throws(CheckpointError) -> [UInt8] {
        let json: Data
        do { json = try JSONEncoder().encode(header) } catch { throw .malformed("cannot encode the header: \(error)") }
        var w = StateWriter()
        w.bytes.reserveCapacity(stateBytes + json.count + 64 + sections.count * 32)
        w.bytes.append(contentsOf: Self.magic)
        w.u32(Self.version)
        w.data(Array(json))
        w.count(sections.count)
        for s in sections {
            w.data(Array(s.op.utf8))
            w.count(s.lane)
            w.data(s.bytes)
        }
        w.u32(CRC32C.checksum(w.bytes))
        w.bytes.append(contentsOf: Self.trailer)
        return w.bytes
    }

    /// Parses and verifies a file's bytes; `headerOnly` skips copying the state.
    static func decode(_ bytes: [UInt8], headerOnly: Bool = false) throws(CheckpointError) -> CheckpointFile {
        let minimum = magic.count + 4 + 4 + 4 + 4 + trailer.count
        guard bytes.count >= minimum else { throw .malformed("truncated (\(bytes.count) bytes)") }
        guard Array(bytes.prefix(magic.count)) == magic else { throw .malformed("not a Sluice checkpoint (bad magic)") }
        guard Array(bytes.suffix(trailer.count)) == trailer else { throw .malformed("truncated or torn (no end marker)") }
        let bodyEnd = bytes.count - trailer.count - 4
        var crcReader = StateReader(bytes, from: bodyEnd, to: bodyEnd + 4)
        let stored = try crcReader.u32()
        let actual = CRC32C.checksum(bytes, count: bodyEnd)
        guard stored == actual else {
            throw .malformed("checksum mismatch (stored \(String(stored, radix: 16)), computed \(String(actual, radix: 16)))")
        }
        var r = StateReader(bytes, from: magic.count, to: bodyEnd)
        let version = try r.u32()
        guard version == Self.version else { throw .malformed("unsupported checkpoint version \(version)") }
        let json = try r.data()
        let header: CheckpointHeader
        do { header = try JSONDecoder().decode(CheckpointHeader.self, from: Data(json)) }
        catch { throw .malformed("unreadable header: \(error)") }
        var sections: [StateSection] = []
        let n = try r.count(minItemBytes: 12)
        for _ in 0..<n {
            let name = String(decoding: try r.data(), as: UTF8.self)
            let lane = Int(try r.u32())
            let state = try r.data()
            sections.append(StateSection(op: name, lane: lane, bytes: headerOnly ? [] : state))
        }
        guard r.atEnd else { throw .malformed("unexpected bytes after the state sections") }
        return CheckpointFile(header: header, sections: sections)
    }
}
