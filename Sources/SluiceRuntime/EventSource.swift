import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// Where a source's events come from. `run` reads until the input ends or `stop` is set,
/// handing each batch to `emit`, which blocks while downstream is full (backpressure).
protocol EventSource: Sendable {
    func run(batchSize: Int, stop: StopFlag, emit: ([Event]) -> Void) throws(SourceError)
}

/// A source that could not read its input.
public struct SourceError: Error, CustomStringConvertible, Sendable {
    public var source: String
    public var message: String
    public var description: String { "source '\(source)': \(message)" }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

/// Reads a file descriptor as lines. Without `idleFlush`, partial batches wait for more data;
/// with it, they are flushed whenever the input goes quiet (stdin, followed files).
private func readLines(fd: Int32, name: String, batchSize: Int, stop: StopFlag, follow: Bool,
                       usePoll: Bool, emit: ([Event]) -> Void) throws(SourceError) {
    var batcher = LineBatcher(batchSize: batchSize)
    let bufferSize = 1 << 20
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 16)
    defer { buffer.deallocate() }
    while !stop.isSet {
        if usePoll {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 100)
            if ready == 0 {
                let pending = batcher.takeEvents()
                if !pending.isEmpty { emit(pending) }
                continue
            }
            if ready < 0 {
                if errno == EINTR { continue }
                throw SourceError(source: name, message: "poll failed: \(errnoText())")
            }
        }
        let n = read(fd, buffer, bufferSize)
        if n < 0 {
            if errno == EINTR { continue }
            throw SourceError(source: name, message: "read failed: \(errnoText())")
        }
        if n == 0 {
            if !follow { break }
            let pending = batcher.takeEvents()
            if !pending.isEmpty { emit(pending) }
            usleep(50_000)   // tail -f: wait for the writer to append more
            continue
        }
        batcher.feed(UnsafeRawBufferPointer(start: buffer, count: n), flush: emit)
    }
    batcher.finish(flush: emit)
}

/// `file: { path, follow }`: JSON or text lines from a file; `follow` keeps reading as it grows.
struct FileSource: EventSource {
    var name: String
    var path: String
    var follow: Bool

    func run(batchSize: Int, stop: StopFlag, emit: ([Event]) -> Void) throws(SourceError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SourceError(source: name, message: "cannot open \(path): \(errnoText())") }
        defer { close(fd) }
        try readLines(fd: fd, name: name, batchSize: batchSize, stop: stop, follow: follow, usePoll: false, emit: emit)
    }
}

/// `stdin: {}`: lines from standard input until end of file or stop.
struct StdinSource: EventSource {
    var name: String
    func run(batchSize: Int, stop: StopFlag, emit: ([Event]) -> Void) throws(SourceError) {
        try readLines(fd: 0, name: name, batchSize: batchSize, stop: stop, follow: false, usePoll: true, emit: emit)
    }
}

/// Fixed events held in memory: what `sluice test` feeds a source.
struct MemorySource: EventSource {
    var events: [Event]
    func run(batchSize: Int, stop: StopFlag, emit: ([Event]) -> Void) throws(SourceError) {
        var i = 0
        while i < events.count && !stop.isSet {
            let end = min(events.count, i + batchSize)
            emit(Array(events[i..<end]))
            i = end
        }
    }
}
