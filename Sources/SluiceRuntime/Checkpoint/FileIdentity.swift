#if canImport(Glibc)
import Glibc
#endif

/// Which file a file source is reading (device and inode), and the content check a checkpoint
/// records so that a restart notices a file that was replaced (rewritten, rotated, truncated).
struct FileIdentity: Sendable, Equatable {
    var device: UInt64
    var inode: UInt64

    init(device: UInt64, inode: UInt64) { self.device = device; self.inode = inode }

    init(fd: Int32) {
        var st = stat()
        if fstat(fd, &st) == 0 { device = UInt64(st.st_dev); inode = UInt64(st.st_ino) } else { device = 0; inode = 0 }
    }

    /// CRC-32C of the first min(offset, 64 KiB) bytes and of the (up to) 4 KiB before `offset`, as
    /// hex; nil if those bytes cannot be read (the file is shorter).
    static func headHash(fd: Int32, offset: Int64) -> String? {
        func crc(_ from: Int64, _ count: Int) -> UInt32? {
            guard count > 0 else { return 0 }
            var buf = [UInt8](repeating: 0, count: count)
            var got = 0
            while got < count {
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, count - got, off_t(from) + off_t(got)) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return nil }
                got += n
            }
            return CRC32C.checksum(buf)
        }
        let headCount = Int(min(offset, 64 << 10))
        let tailCount = Int(min(offset, 4 << 10))
        guard let a = crc(0, headCount), let b = crc(offset - Int64(tailCount), tailCount) else { return nil }
        return String(a, radix: 16) + "-" + String(b, radix: 16)
    }

    static func headHash(path: String, offset: Int64) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return headHash(fd: fd, offset: offset)
    }

    /// Where to start reading `fd` for a source restored at `start`: its offset (the descriptor is
    /// positioned there) if the file still holds the bytes checkpointed, else the beginning, saying why.
    static func resume(fd: Int32, at start: FilePosition?, source: String, path: String,
                       log: (String, String) -> Void) -> LineBatcher.Mark {
        guard let start, start.offset > 0 else { return LineBatcher.Mark(offset: 0, line: 0) }
        var st = stat()
        let size = fstat(fd, &st) == 0 ? Int64(st.st_size) : -1
        let why: String
        if size < start.offset {
            why = "it is shorter (\(size) bytes) than the checkpointed offset \(start.offset)"
        } else if headHash(fd: fd, offset: start.offset) != start.head {
            why = "its content before the checkpointed offset \(start.offset) changed"
        } else if lseek(fd, off_t(start.offset), SEEK_SET) != off_t(start.offset) {
            why = "it cannot be positioned at offset \(start.offset)"
        } else {
            log("info", "source '\(source)': resuming \(path) at byte \(start.offset) (line \(start.line))")
            return LineBatcher.Mark(offset: start.offset, line: start.line)
        }
        log("warn", "source '\(source)': \(path) is not the file the checkpoint read (\(why)): reading it from the start")
        lseek(fd, 0, SEEK_SET)
        return LineBatcher.Mark(offset: 0, line: 0)
    }
}

/// What a source tells its outlet about where it stands after a batch (file sources).
struct SourceMark: Sendable {
    var file: LineBatcher.Mark
    var identity: FileIdentity
}
