#if canImport(Glibc)
import Glibc
#endif

/// Watches the directory of a lookup file with inotify, so that in-place writes, editors'
/// rename-over saves and Kubernetes ConfigMap `..data` symlink swaps are all seen.
final class LookupFileWatcher {
    private let events: InotifyEvents
    private let name: String

    init?(path: String) {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard let events = InotifyEvents(),
              events.watch(dir, mask: UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY)) != nil
        else { return nil }
        self.events = events
    }

    /// Waits up to `timeoutMs`; true if the file (or a `..`-prefixed ConfigMap entry) changed.
    func wait(timeoutMs: Int32) -> Bool {
        var relevant = false
        _ = events.wait(timeoutMs: timeoutMs) { e in
            if e.name == name || e.name == "..data" { relevant = true }
        }
        return relevant
    }
}
