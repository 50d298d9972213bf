#if canImport(Glibc)
import Glibc
#endif

/// Watches a UDF directory (and its subdirectories) with inotify for changes to `.lua` files:
/// in-place writes, atomic renames, creations and deletions. Editors' swap and backup files are
/// ignored. The caller debounces: `wait` returns true on the first relevant change.
final class UDFWatcher {
    private let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// Watched directories by watch descriptor, to resolve the names in events.
    private var paths: [Int32: String] = [:]
    private let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY)

    init?(dir: String) {
        fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { return nil }
        watchTree(dir)
    }

    /// Watches `dir` and every subdirectory below it (also used for directories created later,
    /// so a module in a new subdirectory, `lib/x.lua` = `lib.x`, is watched too).
    private func watchTree(_ dir: String) {
        var dirs = [dir]
        var i = 0
        while i < dirs.count {
            let wd = inotify_add_watch(fd, dirs[i], mask)
            if wd >= 0 { paths[wd] = dirs[i] }
            if let entries = try? listDirectories(dirs[i]) { dirs += entries }
            i += 1
        }
    }

    deinit { close(fd) }

    /// Waits up to `timeoutMs` for a change to a `.lua` file. Returns true if one happened.
    func wait(timeoutMs: Int32) -> Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, timeoutMs) > 0 else { return false }
        var relevant = false
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var newDirs: [String] = []
            buffer.withUnsafeBytes { raw in
                var offset = 0
                while offset + 16 <= n {
                    let wd = raw.load(fromByteOffset: offset, as: Int32.self)
                    let mask = raw.load(fromByteOffset: offset + 4, as: UInt32.self)
                    let len = Int(raw.load(fromByteOffset: offset + 12, as: UInt32.self))
                    let nameBytes = raw[(offset + 16)..<(offset + 16 + len)].prefix { $0 != 0 }
                    let name = String(decoding: nameBytes, as: UTF8.self)
                    if name.hasSuffix(".lua") { relevant = true }
                    if mask & UInt32(IN_ISDIR) != 0, !name.hasPrefix(".") {
                        // A directory created, moved in or out, or deleted: modules may have come or gone.
                        relevant = true
                        if mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0, let parent = paths[wd] { newDirs.append(parent + "/" + name) }
                    }
                    offset += 16 + len
                }
            }
            for d in newDirs { watchTree(d) }
        }
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
