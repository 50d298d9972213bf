#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// `file: { path, follow: true }`, read like `tail -F`: at the end of the file it waits for inotify
/// events on the file's directory (no sleep loop); a file that shrank below what was read
/// (truncation) is read again from its start; when the path names another file (rename
/// rotation, or removed and recreated), the old file is read to its end, then the new one opened.
struct FollowedFile {
    var name: String
    var path: String
    var maxLineBytes = EventLimits.defaultMaxEventBytes + 1
    /// A checkpointed position to resume from (used if the file is still the one checkpointed).
    var start: FilePosition? = nil
    var log: @Sendable (String, String) -> Void = { _, _ in }

    private static let bufferSize = 1 << 20

    func run(batchSize: Int, stop: StopFlag, emit sendMarked: ([Event], SourceMark) -> Void) throws(SourceError) {
        var fd = try openFile()
        defer { close(fd) }
        let from = FileIdentity.resume(fd: fd, at: start, source: name, path: path, log: log)
        var identity = FileIdentity(fd: fd)
        var batcher = LineBatcher(batchSize: batchSize, maxLineBytes: maxLineBytes, start: from)
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        let watcher = DirectoryWatcher(directory: Self.directory(of: path))
        var offset = off_t(from.offset)
        func emit(_ events: [Event], _ mark: LineBatcher.Mark) { sendMarked(events, SourceMark(file: mark, identity: identity)) }

        /// Reads to the current end of `fd`; false at end of file.
        func readChunk() throws(SourceError) -> Bool {
            while true {
                let n = read(fd, buffer, Self.bufferSize)
                if n > 0 {
                    offset += off_t(n)
                    batcher.feed(Array(UnsafeRawBufferPointer(start: buffer, count: n)), flush: emit)
                    return true
                }
                if n == 0 { return false }
                if errno == EINTR { continue }
                throw SourceError(source: name, message: "read failed: \(Self.errnoText())")
            }
        }

        while !stop.isSet {
            if try readChunk() { continue }
            let pending = batcher.takeEvents()
            if !pending.isEmpty { emit(pending, batcher.mark) }

            var open = stat()
            if fstat(fd, &open) == 0, open.st_mode & S_IFMT == S_IFREG, open.st_size < offset {
                // Truncated: what was there is gone; start again from the top.
                batcher.endOfFile(flush: emit)
                lseek(fd, 0, SEEK_SET)
                offset = 0
                continue
            }
            var named = stat()
            if stat(path, &named) == 0, named.st_ino != open.st_ino || named.st_dev != open.st_dev {
                // Rotated or replaced: finish the old file (a writer may have appended since), then switch.
                while try readChunk() {}
                guard let next = try openFileIfPresent() else { continue }
                batcher.endOfFile(flush: emit)
                close(fd)
                fd = next
                identity = FileIdentity(fd: fd)
                offset = 0
                continue
            }
            watcher.wait(milliseconds: 250)   // wakes on any change in the directory; the timeout re-checks stop
        }
        // Stopped mid-line: read on to the end of that line (up to a second) rather than cut it in two.
        let deadline = ContinuousClock.now + .seconds(1)
        while batcher.hasPartialLine && ContinuousClock.now < deadline {
            let n = read(fd, buffer, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { watcher.wait(milliseconds: 50); continue }
            batcher.feed(Array(UnsafeRawBufferPointer(start: buffer, count: n)), flush: emit)
        }
        batcher.finish(flush: emit)
    }

    private func openFile() throws(SourceError) -> Int32 {
        guard let fd = try openFileIfPresent() else {
            throw SourceError(source: name, message: "cannot open \(path): \(Self.errnoText())")
        }
        return fd
    }

    /// The file at `path`, or nil if there is none right now (between a rename and the new file).
    private func openFileIfPresent() throws(SourceError) -> Int32? {
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        if fd >= 0 { return fd }
        if errno == ENOENT { return nil }
        throw SourceError(source: name, message: "cannot open \(path): \(Self.errnoText())")
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// An inotify watch on one directory: `wait` returns when anything in it changes (a file written,
/// created, renamed, removed) or after the timeout. Without inotify (limits reached) it only waits.
final class DirectoryWatcher {
    private let fd: Int32

    init(directory: String) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if fd >= 0 {
            let mask = UInt32(IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)
            if inotify_add_watch(fd, directory, mask) < 0 {
                close(fd)
                self.fd = -1
                return
            }
        }
        self.fd = fd
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Blocks until a change or `milliseconds`, then discards the queued events (the caller re-checks the file).
    func wait(milliseconds: Int32) {
        guard fd >= 0 else {
            _ = poll(nil, 0, milliseconds)
            return
        }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, milliseconds) > 0 else { return }
        var sink = [UInt8](repeating: 0, count: 4096)
        while sink.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
    }
}
