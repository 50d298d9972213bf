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

/// An event a sink could not deliver: its index in the batch and the reason.
typealias DeliveryFailure = (index: Int, reason: String)

/// Where a sink's batches go. `send` is called from the sink's thread only; `done` is called exactly
/// once per batch, when every event is delivered or has failed (possibly later, on another thread).
protocol SinkOutput: Sendable {
    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void)
    /// Waits until everything sent has been delivered or failed (end of run).
    func close()
}

/// Writes to a file descriptor (an appended file, stdout or stderr), retrying partial writes.
/// A batch counts as delivered once `write(2)` has accepted it.
final class DescriptorOutput: SinkOutput {
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

    deinit { if ownsDescriptor { Glibc.close(fd) } }

    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
        var failure: String?
        batch.data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "write failed: \(String(cString: strerror(errno)))"
                    return
                }
                offset += n
            }
        }
        if let failure {
            // Events wholly written before the failure are delivered; the rest are not.
            done((0..<batch.count).map { (index: $0, reason: failure) })
        } else {
            done([])
        }
    }

    func close() {}
}

/// Keeps written events in memory, one entry per line: what `sluice test` reads back.
final class MemoryOutput: SinkOutput {
    private let lines = Mutex<[[UInt8]]>([])

    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
        let payloads = batch.payloads
        lines.withLock { $0.append(contentsOf: payloads) }
        done([])
    }

    func close() {}

    var events: [[UInt8]] { lines.withLock { $0 } }
}
