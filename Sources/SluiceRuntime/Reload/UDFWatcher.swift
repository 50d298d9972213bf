#if canImport(Glibc)
import Glibc
#endif

/// Watches a UDF directory (and its subdirectories) with inotify for changes to `.lua` files:
/// in-place writes, atomic renames, creations and deletions. Editors' swap and backup files are
/// ignored. The caller debounces: `wait` returns true on the first relevant change.
///
/// A Kubernetes ConfigMap volume is a directory of symlinks (`enrich.lua -> ..data/enrich.lua`,
/// `..data -> ..2026_12_01_10_00_00.123`) updated by writing a new timestamped directory and renaming
/// a new `..data` symlink over the old one: no `.lua` entry changes, so the rename of `..data` is
/// what counts (the hidden timestamped directories themselves are never watched or copied).
final class UDFWatcher {
    private let events: InotifyEvents

    /// Watched directories by watch descriptor, to resolve the names in events.
    private var paths: [Int32: String] = [:]
    private let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY)

    init?(dir: String) {
        guard let events = InotifyEvents(bufferSize: 64 * 1024) else { return nil }
        self.events = events
        watchTree(dir)
    }

    /// Watches `dir` and every subdirectory below it (also used for directories created later,
    /// so a module in a new subdirectory, `lib/x.lua` = `lib.x`, is watched too).
    private func watchTree(_ dir: String) {
        var dirs = [dir]
        var i = 0
        while i < dirs.count {
            if let wd = events.watch(dirs[i], mask: mask) { paths[wd] = dirs[i] }
            if let entries = try? listDirectories(dirs[i]) { dirs += entries }
            i += 1
        }
    }

    /// Waits up to `timeoutMs` for a change to a `.lua` file. Returns true if one happened.
    func wait(timeoutMs: Int32) -> Bool {
        var relevant = false
        var newDirs: [String] = []
        _ = events.wait(timeoutMs: timeoutMs) { e in
            if e.name.hasSuffix(".lua") { relevant = true }
            if e.name == "..data", e.mask & UInt32(IN_MOVED_TO | IN_CREATE) != 0 { relevant = true }
            if e.mask & UInt32(IN_ISDIR) != 0, !e.name.hasPrefix(".") {
                // A directory created, moved in or out, or deleted: modules may have come or gone.
                relevant = true
                if e.mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0, let parent = paths[e.watch] { newDirs.append(parent + "/" + e.name) }
            }
        }
        for d in newDirs { watchTree(d) }
        return relevant
    }

    private func listDirectories(_ dir: String) throws -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            if entry.pointee.d_type == UInt8(DT_DIR) { out.append(dir + "/" + name) }
        }
        return out
    }
}
