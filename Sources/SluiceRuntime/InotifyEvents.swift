#if canImport(Glibc)
import Glibc
#endif

/// The events of one inotify instance, for the file watchers (UDF directory, lookup files).
/// Owns the descriptor; used by one thread.
final class InotifyEvents {
    /// One event: the watch it came from, what happened, and the entry's name.
    struct Event {
        var watch: Int32
        var mask: UInt32
        var name: String
    }

    let fd: Int32
    private var buffer: [UInt8]

    init?(bufferSize: Int = 16 * 1024) {
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { return nil }
        buffer = [UInt8](repeating: 0, count: bufferSize)
    }

    deinit { close(fd) }

    /// Adds a watch; its descriptor, or nil.
    func watch(_ path: String, mask: UInt32) -> Int32? {
        let wd = inotify_add_watch(fd, path, mask)
        return wd >= 0 ? wd : nil
    }

    /// Waits up to `timeoutMs` for events and hands every queued one to `body`. False on timeout.
    func wait(timeoutMs: Int32, _ body: (Event) -> Void) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { return false }
        while true {
            var events: [Event] = []
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            buffer.withUnsafeBytes { raw in
                var offset = 0
                while offset + 16 <= n {
                    let wd = raw.load(fromByteOffset: offset, as: Int32.self)
                    let mask = raw.load(fromByteOffset: offset + 4, as: UInt32.self)
                    let len = Int(raw.load(fromByteOffset: offset + 12, as: UInt32.self))
                    let name = String(decoding: raw[(offset + 16)..<(offset + 16 + len)].prefix { $0 != 0 }, as: UTF8.self)
                    events.append(Event(watch: wd, mask: mask, name: name))
                    offset += 16 + len
                }
            }
            for e in events { body(e) }
        }
        return true
    }
}
