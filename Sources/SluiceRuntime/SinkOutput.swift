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

/// An event a sink could not deliver: its index in the batch, the reason, and whether trying again
/// may help.
struct DeliveryFailure: Sendable {
    var index: Int
    var reason: String
    var retry: RetryAdvice = .transient(after: nil)
}

/// What a failed delivery says about trying again.
enum RetryAdvice: Sendable, Equatable {
    /// Worth retrying; `after` is the server's `Retry-After`, if it named one.
    case transient(after: Duration?)
    /// Will fail again (an HTTP 4xx, a key memcached cannot store): dead-letter at once.
    case permanent
}

/// Where a sink's batches go. `send` is called from the sink's thread only; `done` is called exactly
/// once per batch, when every event is delivered or has failed (possibly later, on another thread).
protocol SinkOutput: Sendable {
    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void)
    /// Waits until everything sent has been delivered or failed (end of run).
    func close()
}

/// Writes to a file descriptor (an appended file, stdout or stderr), retrying partial writes.
/// A batch counts as delivered once `write(2)` has accepted it.
///
/// A file is opened in `init` with `O_NONBLOCK` (then cleared), so errors show at start-up without
/// blocking. A FIFO with no reader yet (`ENXIO`) is opened later, blocking, by the first `send` —
/// on the sink's own thread — so it never stalls the thread building the pipeline or other sinks.
final class DescriptorOutput: SinkOutput {
    let sink: String
    /// The file to open on the sink's thread when `init` could not (FIFO without a reader).
    private let deferredPath: String?
    /// The descriptor, -1 until a deferred open succeeds. Locked: `send` runs on the sink's thread,
    /// `deinit` wherever the last reference goes.
    private let descriptor: Mutex<Int32>
    let ownsDescriptor: Bool

    init(sink: String, fd: Int32) {
        self.sink = sink; self.descriptor = Mutex(fd); self.ownsDescriptor = false; self.deferredPath = nil
    }

    /// Opens `path` for appending, creating it and its parent directories.
    init(sink: String, path: String) throws(SinkError) {
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) }
            catch { throw SinkError(sink: sink, message: "cannot create directory \(parent): \(error.localizedDescription)") }
        }
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC
        var fd = open(path, flags | O_NONBLOCK, 0o644)
        var deferred: String?
        if fd >= 0 {
            let current = fcntl(fd, F_GETFL)
            if current < 0 || fcntl(fd, F_SETFL, current & ~O_NONBLOCK) < 0 {
                let reason = String(cString: strerror(errno))
                Glibc.close(fd)
                throw SinkError(sink: sink, message: "cannot make \(path) blocking: \(reason)")
            }
        } else if errno == ENXIO {
            deferred = path   // a FIFO nobody reads yet: open it, blocking, on the sink's thread
            fd = -1
        } else {
            throw SinkError(sink: sink, message: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        self.sink = sink; self.descriptor = Mutex(fd); self.ownsDescriptor = true; self.deferredPath = deferred
    }

    deinit {
        let fd = descriptor.withLock { $0 }
        if ownsDescriptor && fd >= 0 { Glibc.close(fd) }
    }

    /// The descriptor, opening a deferred FIFO first (blocks until it has a reader).
    private func openDescriptor() -> Result<Int32, SinkError> {
        let fd = descriptor.withLock { $0 }
        if fd >= 0 { return .success(fd) }
        guard let path = deferredPath else { return .failure(SinkError(sink: sink, message: "no descriptor")) }
        var opened: Int32
        repeat { opened = open(path, O_WRONLY | O_APPEND | O_CLOEXEC) } while opened < 0 && errno == EINTR
        guard opened >= 0 else {
            return .failure(SinkError(sink: sink, message: "cannot open \(path): \(String(cString: strerror(errno)))"))
        }
        descriptor.withLock { $0 = opened }
        return .success(opened)
    }

    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
        let fd: Int32
        switch openDescriptor() {
        case .success(let d): fd = d
        case .failure(let error):
            done((0..<batch.count).map { DeliveryFailure(index: $0, reason: error.message) })
            return
        }
        var failure: String?
        var offset = 0
        batch.data.withUnsafeBytes { raw in
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
            // Events wholly written before the failure are delivered; the rest (a torn one included) are not.
            let firstUnwritten = batch.ends.firstIndex { $0 > offset } ?? batch.count
            done((firstUnwritten..<batch.count).map { DeliveryFailure(index: $0, reason: failure) })
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
