#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A sink's output could not be written.
public struct SinkError: Error, CustomStringConvertible, Sendable {
    public var sink: String
    public var message: String
    public var description: String { "sink '\(sink)': \(message)" }
}

/// Where a sink's encoded bytes go. Owned by the sink's thread.
protocol SinkWriter: Sendable {
    func write(_ bytes: [UInt8]) throws(SinkError)
}

/// Writes to a file descriptor (an appended file, stdout or stderr), retrying partial writes.
final class DescriptorWriter: SinkWriter {
    let sink: String
    let fd: Int32
    let ownsDescriptor: Bool

    init(sink: String, fd: Int32) {
        self.sink = sink; self.fd = fd; self.ownsDescriptor = false
    }

    /// Opens `path` for appending, creating it and its parent directories.
    init(sink: String, path: String) throws(SinkError) {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
            catch { throw SinkError(sink: sink, message: "cannot create directory \(parent): \(error.localizedDescription)") }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SinkError(sink: sink, message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        self.sink = sink; self.fd = fd; self.ownsDescriptor = true
    }

    deinit { if ownsDescriptor { close(fd) } }

    func write(_ bytes: [UInt8]) throws(SinkError) {
        var failure: SinkError?
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = SinkError(sink: sink, message: "write failed: \(String(cString: strerror(errno)))")
                    return
                }
                offset += n
            }
        }
        if let failure { throw failure }
    }
}

/// Keeps written events in memory, one entry per line: what `sluice test` reads back.
final class MemoryWriter: SinkWriter {
    private let lines = Mutex<[[UInt8]]>([])

    func write(_ bytes: [UInt8]) throws(SinkError) {
        let split = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map { Array($0) }
        lines.withLock { $0.append(contentsOf: split) }
    }

    var events: [[UInt8]] { lines.withLock { $0 } }
}
