import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A `sluice run` process for hot reload tests: stdin is fed by the test, stderr is read as it comes
/// so a test can wait for `UDF version N is live` / `UDF reload rejected` before its next step.
/// Sinks should write to files (stdout is drained and kept too).
final class ReloadingRun: @unchecked Sendable {
    let dir: URL
    let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let condition = NSCondition()
    private var errText = ""
    private var errLines: [String] = []
    private var outData = Data()
    private var readersLeft = 2
    private var stdinOpen = true
    private var live = 1
    private var outLineCount = 0

    /// Starts `sluice run pipelines/p.yaml` in `dir`. `TMPDIR` points into `dir/tmp` so the
    /// reloader's snapshot copies can be inspected.
    init(dir: URL, spec: String = "pipelines/p.yaml") throws {
        self.dir = dir
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("tmp"), withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: SluiceBinary.path)
        process.arguments = ["run", spec]
        process.currentDirectoryURL = dir
        var env = ProcessInfo.processInfo.environment
        env["TMPDIR"] = dir.appendingPathComponent("tmp").path + "/"
        process.environment = env
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        signal(SIGPIPE, SIG_IGN)   // writes after the process exited fail with EPIPE instead
        try process.run()
        startReader(stdoutPipe.fileHandleForReading.fileDescriptor, isErr: false)
        startReader(stderrPipe.fileHandleForReading.fileDescriptor, isErr: true)
    }

    var pid: Int32 { process.processIdentifier }

    private func startReader(_ fd: Int32, isErr: Bool) {
        let t = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            var partial: [UInt8] = []
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                condition.lock()
                if isErr {
                    partial += buffer[0..<n]
                    while let nl = partial.firstIndex(of: 0x0A) {
                        let line = String(decoding: partial[..<nl], as: UTF8.self)
                        errLines.append(line)
                        if let m = line.firstMatch(of: /UDF version (\d+) is live/), let v = Int(m.1) { live = max(live, v) }
                        errText += line + "\n"
                        partial.removeSubrange(...nl)
                    }
                } else {
                    outData.append(contentsOf: buffer[0..<n])
                    outLineCount += buffer[0..<n].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                }
                condition.broadcast()
                condition.unlock()
            }
            condition.lock()
            if isErr, !partial.isEmpty { errText += String(decoding: partial, as: UTF8.self) }
            readersLeft -= 1
            condition.broadcast()
            condition.unlock()
        }
        t.start()
    }

    /// Writes to the process's stdin (blocking while the pipe is full).
    func feed(_ text: String) {
        let bytes = Array(text.utf8)
        let fd = stdinPipe.fileHandleForWriting.fileDescriptor
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            off += n
        }
    }

    func closeStdin() {
        condition.lock(); defer { condition.unlock() }
        if stdinOpen { stdinOpen = false; try? stdinPipe.fileHandleForWriting.close() }
    }

    func send(_ sig: Int32) { kill(pid, sig) }

    /// stderr lines so far.
    var stderrLines: [String] { condition.lock(); defer { condition.unlock() }; return errLines }

    private func locked<T>(_ body: () -> T) -> T { condition.lock(); defer { condition.unlock() }; return body() }

    /// Polls `done` until it holds, the process's output has ended or the timeout passes; returns
    /// `done()` then. It sleeps with `Task.sleep`: no thread of the cooperative pool is blocked.
    private func poll(timeout: TimeInterval, _ done: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !done() {
            let ended = locked { readersLeft == 0 }
            if ended || Date() >= deadline { return done() }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// Waits until `done(stderrLines)` holds; false on timeout.
    func waitForStderr(timeout: TimeInterval = 20, _ done: ([String]) -> Bool) async -> Bool {
        await poll(timeout: timeout) { done(stderrLines) }
    }

    /// Waits for `sluice: info: UDF version N is live`.
    func waitForVersion(_ n: Int, timeout: TimeInterval = 20) async -> Bool {
        await poll(timeout: timeout) { locked { live >= n } }
    }

    /// Waits until `count` reloads have been rejected in total.
    func waitForRejections(_ count: Int, timeout: TimeInterval = 20) async -> Bool {
        await waitForStderr(timeout: timeout) { $0.filter { $0.contains("UDF reload rejected") }.count >= count }
    }

    /// Waits for stdout to hold at least `count` lines; false on timeout.
    func waitForStdoutLines(_ count: Int, timeout: TimeInterval = 20) async -> Bool {
        await poll(timeout: timeout) { locked { outLineCount >= count } }
    }

    // Blocking forms of the waits above, for code already off the cooperative pool (`offPool`, a
    // thread of its own). In an async test, the async forms are chosen.

    @discardableResult
    func waitForStderr(timeout: TimeInterval = 20, _ done: ([String]) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock(); defer { condition.unlock() }
        while !done(errLines) {
            if readersLeft == 0 || !condition.wait(until: deadline) { return done(errLines) }
        }
        return true
    }

    @discardableResult
    func waitForVersion(_ n: Int, timeout: TimeInterval = 20) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock(); defer { condition.unlock() }
        while live < n {
            if readersLeft == 0 || !condition.wait(until: deadline) { return live >= n }
        }
        return true
    }

    var stdoutLines: [String] {
        condition.lock(); defer { condition.unlock() }
        return String(decoding: outData, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Closes stdin (unless `closingStdin` is false: a feeding thread still uses it), waits for exit
    /// and returns (status, all of stderr).
    func finish(closingStdin: Bool = true, timeout: TimeInterval = 60) -> (status: Int32, stderr: String) {
        if closingStdin { closeStdin() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        let status = waitForExit(process, timeout: 30) ?? -1
        condition.lock()
        while readersLeft > 0 { _ = condition.wait(until: Date().addingTimeInterval(5)) }
        let text = errText
        condition.unlock()
        return (status, text)
    }

    /// Resident set size of the process in KiB (VmRSS from /proc).
    func rssKiB() -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }
}

/// One output line of the stamping UDFs used by the hot reload tests.
struct Stamped: Equatable {
    var seq: Int
    var marker: String
    var version: Int

    static func parse(_ lines: [String]) -> [Stamped] {
        lines.map { line in
            let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
            return Stamped(seq: o["seq"] as? Int ?? -1, marker: o["v"] as? String ?? "?", version: o["cv"] as? Int ?? -1)
        }
    }
}

enum UDFFile {
    /// A map UDF `m.stamp` that stamps `marker` and `ctx.version`, plus optional extra Lua.
    static func stamp(_ marker: String, extra: String = "") -> String {
        """
        local M = {}
        function M.stamp(event, ctx)
          event.v = "\(marker)"
          event.cv = ctx.version
          return event
        end
        \(extra)
        return M

        """
    }

    /// Rewrites `path` in place: open with O_TRUNC and one write (same inode), as `cat > f` does.
    static func writeInPlace(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CREAT, 0o644)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw POSIXError(.EIO) }
    }

    /// Replaces `path` atomically: write a temporary file next to it, then rename over it (a new inode).
    static func writeByRename(_ text: String, to path: String) throws {
        let tmp = path + ".tmp~"
        try Data(text.utf8).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, path) == 0 else { throw POSIXError(.EIO) }
    }
}

extension String {
    /// Lines `{"seq":start}` ... `{"seq":start+n-1}`, newline-terminated.
    static func seqLines(_ range: Range<Int>) -> String {
        var s = ""
        s.reserveCapacity(range.count * 14)
        for i in range { s += "{\"seq\":\(i)}\n" }
        return s
    }
}

extension URL {
    /// Polls `relative` (every 10 ms, sleeping with `Task.sleep`) until it has at least `count` lines or
    /// the timeout passes; returns its lines.
    func waitForLines(_ relative: String, count: Int, timeout: TimeInterval = 20) async -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        var got = lines(relative)
        while got.count < count && Date() < deadline {
            try? await Task.sleep(for: .milliseconds(10))
            got = lines(relative)
        }
        return got
    }

    /// Number of newline bytes in the file at `relative` (0 if missing): its complete lines, counted
    /// without splitting it into strings.
    func newlines(_ relative: String) -> Int {
        guard let data = FileManager.default.contents(atPath: appendingPathComponent(relative).path) else { return 0 }
        return data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int in
            guard var p = raw.baseAddress else { return 0 }
            let end = p + raw.count
            var n = 0
            while p < end, let q = memchr(p, 0x0A, end - p) { n += 1; p = UnsafeRawPointer(q) + 1 }
            return n
        }
    }

    /// Size of the file at `relative` in bytes (0 if missing).
    func size(_ relative: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: appendingPathComponent(relative).path))?[.size] as? Int) ?? 0
    }
}

/// A counter shared between a feeding thread and the test.
final class Counter: @unchecked Sendable {
    private let lock = NSCondition()
    private var value = 0
    private var flag = false
    func add(_ n: Int) { lock.lock(); value += n; lock.broadcast(); lock.unlock() }
    var current: Int { lock.lock(); defer { lock.unlock() }; return value }
    /// Blocks (on the caller's own thread, never in a test's task) until the value is at least `n`.
    func waitFor(atLeast n: Int, timeout: TimeInterval = 30) {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock(); defer { lock.unlock() }
        while value < n && lock.wait(until: deadline) {}
    }
    func raise() { lock.lock(); flag = true; lock.broadcast(); lock.unlock() }
    var isRaised: Bool { lock.lock(); defer { lock.unlock() }; return flag }
}
