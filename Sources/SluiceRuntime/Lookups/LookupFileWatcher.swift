#if canImport(Glibc)
import Glibc
#endif

/// Watches the directory of a lookup file with inotify, so that in-place writes, editors'
/// rename-over saves and Kubernetes ConfigMap `..data` symlink swaps are all seen.
final class LookupFileWatcher {
    private let fd: Int32
    private let name: String
    private var buffer = [UInt8](repeating: 0, count: 16 * 1024)

    init?(path: String) {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { return nil }
        let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY)
        guard inotify_add_watch(fd, dir, mask) >= 0 else { close(fd); return nil }
    }

    deinit { close(fd) }

    /// Waits up to `timeoutMs`; true if the file (or a `..`-prefixed ConfigMap entry) changed.
    func wait(timeoutMs: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { return false }
        var relevant = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            buffer.withUnsafeBytes { raw in
                var offset = 0
                while offset + 16 <= n {
                    let len = Int(raw.load(fromByteOffset: offset + 12, as: UInt32.self))
                    let entry = String(decoding: raw[(offset + 16)..<(offset + 16 + len)].prefix { $0 != 0 }, as: UTF8.self)
                    if entry == name || entry == "..data" { relevant = true }
                    offset += 16 + len
                }
            }
        }
        return relevant
    }
}
