import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The checkpoint directory: `ckpt-ID.sluice` files (complete, atomically renamed into place),
/// `.ckpt-ID.tmp` while one is written, `ckpt-ID.sluice.rewound` for those a rewind set aside, and
/// `REWIND` (JSON) naming the checkpoint the next start restores. Not thread-safe: one writer.
public struct CheckpointStore: Sendable {
    public let dir: String

    public init(dir: String) { self.dir = dir }

    static func name(_ id: UInt64) -> String { "ckpt-" + String(repeating: "0", count: max(0, 10 - String(id).count)) + String(id) + ".sluice" }
    func path(_ id: UInt64) -> String { dir + "/" + Self.name(id) }
    var rewindPath: String { dir + "/REWIND" }

    private func entries() -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] }

    private static func id(of entry: String, suffix: String) -> UInt64? {
        guard entry.hasPrefix("ckpt-"), entry.hasSuffix(suffix) else { return nil }
        return UInt64(entry.dropFirst(5).dropLast(suffix.count))
    }

    /// Ids of the complete checkpoint files, oldest first (their content is not checked).
    public func ids() -> [UInt64] {
        entries().compactMap { Self.id(of: $0, suffix: ".sluice") }.sorted()
    }

    /// The id the next checkpoint gets: above every id ever used in the directory.
    func nextID() -> UInt64 {
        let all = entries().compactMap { e -> UInt64? in
            Self.id(of: e, suffix: ".sluice") ?? Self.id(of: e, suffix: ".sluice.rewound") ?? Self.id(of: e, suffix: ".sluice.corrupt")
        }
        return (all.max() ?? 0) + 1
    }

    func load(_ id: UInt64) throws(CheckpointError) -> CheckpointFile {
        let p = path(id)
        guard let data = FileManager.default.contents(atPath: p) else { throw .io(path: p, message: "cannot read") }
        do { return try CheckpointFile.decode(Array(data)) }
        catch { throw .malformed("\(p): \(error)") }
    }

    /// The newest checkpoint that reads back whole; every newer one that does not is reported through `log`.
    func latestValid(log: (String) -> Void) -> CheckpointFile? {
        for id in ids().reversed() {
            do { return try load(id) } catch { log("checkpoint \(id) is unusable, skipped: \(error)") }
        }
        return nil
    }

    /// Writes atomically: a temporary file, fsync, rename into place, fsync of the directory.
    func write(_ file: CheckpointFile) throws(CheckpointError) {
        try makeDirectory()
        let bytes = try file.encoded()
        let tmp = dir + "/.ckpt-\(file.header.id).tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(path: tmp, message: "cannot create: \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = String(cString: strerror(errno))
                close(fd); unlink(tmp)
                throw .io(path: tmp, message: "write failed: \(e)")
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd); unlink(tmp)
            throw .io(path: tmp, message: "fsync failed: \(e)")
        }
        close(fd)
        guard rename(tmp, path(file.header.id)) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw .io(path: tmp, message: "rename failed: \(e)")
        }
        syncDirectory()
    }

    /// Creates `dir` and its missing parents (`mkdir -p`).
    func makeDirectory() throws(CheckpointError) {
        var path = dir.hasPrefix("/") ? "" : "."
        for part in dir.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw .io(path: dir, message: "cannot create the checkpoint directory: \(path): \(String(cString: strerror(errno)))")
            }
        }
        var st = stat()
        guard stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR, access(dir, W_OK) == 0 else {
            throw .io(path: dir, message: "the checkpoint directory is not a writable directory")
        }
    }

    private func syncDirectory() {
        let d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 { fsync(d); close(d) }
    }

    /// Keeps the newest `keep` complete checkpoints (the newest is durable before this runs) and
    /// removes leftover temporary files.
    func prune(keep: Int) {
        let all = ids()
        for id in all.dropLast(max(1, keep)) { unlink(path(id)) }
        for e in entries() where e.hasPrefix(".ckpt-") && e.hasSuffix(".tmp") { unlink(dir + "/" + e) }
    }

    // MARK: - Rewind

    /// What `sluice rewind` asks of the next start.
    struct RewindMarker: Codable, Equatable {
        /// The checkpoint to restore, or nil: start with empty state (Kafka from `time`).
        var to: UInt64?
        /// `--to TIME`, ms since the epoch.
        var time: Int64?
        /// The label re-emitted events carry (`sluice-restatement`).
        var restatement: String
        /// Source positions reached when the rewind was made: restatement ends past them.
        var until: [SourceCheckpoint]
    }

    func readRewind() -> RewindMarker? {
        guard let data = FileManager.default.contents(atPath: rewindPath) else { return nil }
        return try? JSONDecoder().decode(RewindMarker.self, from: data)
    }

    func writeRewind(_ m: RewindMarker) throws(CheckpointError) {
        try makeDirectory()
        let data: Data
        do { data = try JSONEncoder().encode(m) } catch { throw .malformed("cannot encode the rewind marker: \(error)") }
        let tmp = rewindPath + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else { throw .io(path: tmp, message: "cannot write") }
        let fd = open(tmp, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(tmp, rewindPath) == 0 else { throw .io(path: rewindPath, message: "rename failed: \(String(cString: strerror(errno)))") }
        syncDirectory()
    }

    func clearRewind() { unlink(rewindPath); syncDirectory() }

    /// Sets aside every checkpoint newer than `id` (all of them for nil), so the next start restores `id`.
    func setAside(after id: UInt64?) {
        for c in ids() where id.map({ c > $0 }) ?? true {
            rename(path(c), path(c) + ".rewound")
        }
        syncDirectory()
    }
}
