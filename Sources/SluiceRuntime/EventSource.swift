import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// Where a source's events come from. `run` reads until the input ends or `stop` is set,
/// handing each batch to the outlet (`emit` blocks while downstream is full; `offer` does not).
protocol EventSource: Sendable {
    func run(batchSize: Int, stop: StopFlag, outlet: SourceOutlet) throws(SourceError)
    /// Called once the whole pipeline has drained (every acknowledgement is in): commit and close.
    func finish()
    /// The inputs that must each have a watermark before the source's watermark moves (a Kafka
    /// consumer's assigned partitions); nil = those that sent something.
    var inputs: (@Sendable () -> [SourceInput]?)? { get }
    /// A checkpoint holding `position` for this source is complete (Kafka commits its offsets).
    func checkpointed(_ position: SourceCheckpoint)
}

extension EventSource {
    func finish() {}
    func checkpointed(_ position: SourceCheckpoint) {}
    var inputs: (@Sendable () -> [SourceInput]?)? { nil }
}

/// A source that could not read its input.
public struct SourceError: Error, CustomStringConvertible, Sendable {
    public var source: String
    public var message: String
    public var description: String { "source '\(source)': \(message)" }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

/// Reads a file descriptor as lines. Without `usePoll`, partial batches wait for more data; with
/// it (stdin), a partial batch is handed on as soon as no more input is ready, so an event at a low
/// rate is not held back by batching (while a busy input still fills whole batches).
private func readLines(fd: Int32, name: String, batchSize: Int, maxLineBytes: Int, stop: StopFlag,
                       usePoll: Bool, start: LineBatcher.Mark = LineBatcher.Mark(offset: 0, line: 0),
                       emit: ([Event], LineBatcher.Mark) -> Void) throws(SourceError) {
    var batcher = LineBatcher(batchSize: batchSize, maxLineBytes: maxLineBytes, start: start)
    let bufferSize = 1 << 20
    while !stop.isSet {
        if usePoll {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, batcher.events.isEmpty ? 100 : 0)
            if ready == 0 {
                let pending = batcher.takeEvents()
                if !pending.isEmpty { emit(pending, batcher.mark) }
                continue
            }
            if ready < 0 {
                if errno == EINTR { continue }
                throw SourceError(source: name, message: "poll failed: \(errnoText())")
            }
        }
        // Read straight into the array the events will be slices of. A short read (a pipe at a
        // low rate) is copied to an array of its size, so held events never pin a mostly empty
        // megabyte.
        var n = 0
        var chunk = [UInt8](unsafeUninitializedCapacity: bufferSize) { bytes, count in
            n = read(fd, bytes.baseAddress, bufferSize)
            count = max(n, 0)
        }
        if n < 0 {
            if errno == EINTR { continue }
            throw SourceError(source: name, message: "read failed: \(errnoText())")
        }
        if n == 0 { break }   // followed files are read by FollowedFile
        if n < bufferSize / 4 { chunk = chunk.withUnsafeBytes { [UInt8]($0) } }
        batcher.feed(chunk, flush: emit)
    }
    // Stopped mid-line: read on, one byte at a time so nothing past it is consumed, to the end of
    // that line (waiting up to a second for it) rather than cut it in two.
    let deadline = ContinuousClock.now + .seconds(1)
    while stop.isSet && batcher.hasPartialLine && ContinuousClock.now < deadline {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 100) > 0 else { continue }
        var byte: UInt8 = 0
        if read(fd, &byte, 1) <= 0 { break }
        batcher.feed([byte], flush: emit)
    }
    batcher.finish(flush: emit)
}

/// `file: { path, follow }`: JSON or text lines from a file; `follow` keeps reading as it grows.
/// `start` (from a checkpoint) resumes at a byte offset, if the file is still the one checkpointed.
struct FileSource: EventSource {
    var name: String
    var path: String
    var follow: Bool
    /// Lines are cut at this length (`max_event_bytes + 1`): see `LineBatcher.maxLineBytes`.
    var maxLineBytes = EventLimits.defaultMaxEventBytes + 1
    var start: FilePosition? = nil
    var log: @Sendable (String, String) -> Void = { _, _ in }

    func run(batchSize: Int, stop: StopFlag, outlet: SourceOutlet) throws(SourceError) {
        if follow {
            try FollowedFile(name: name, path: path, maxLineBytes: maxLineBytes, start: start, log: log)
                .run(batchSize: batchSize, stop: stop) { outlet.emit($0, mark: $1) }
            return
        }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SourceError(source: name, message: "cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        let from = FileIdentity.resume(fd: fd, at: start, source: name, path: path, log: log)
        let identity = FileIdentity(fd: fd)
        try readLines(fd: fd, name: name, batchSize: batchSize, maxLineBytes: maxLineBytes, stop: stop,
                      usePoll: false, start: from) { outlet.emit($0, mark: SourceMark(file: $1, identity: identity)) }
    }
}

/// `stdin: {}`: lines from standard input until end of file or stop.
struct StdinSource: EventSource {
    var name: String
    /// Lines are cut at this length (`max_event_bytes + 1`): see `LineBatcher.maxLineBytes`.
    var maxLineBytes = EventLimits.defaultMaxEventBytes + 1
    func run(batchSize: Int, stop: StopFlag, outlet: SourceOutlet) throws(SourceError) {
        try readLines(fd: 0, name: name, batchSize: batchSize, maxLineBytes: maxLineBytes, stop: stop,
                      usePoll: true) { events, _ in outlet.emit(events) }
    }
}

/// Fixed events held in memory: what `sluice test` feeds a source.
struct MemorySource: EventSource {
    var events: [Event]
    func run(batchSize: Int, stop: StopFlag, outlet: SourceOutlet) throws(SourceError) {
        var i = 0
        while i < events.count && !stop.isSet {
            let end = min(events.count, i + batchSize)
            outlet.emit(Array(events[i..<end]))
            i = end
        }
    }
}
