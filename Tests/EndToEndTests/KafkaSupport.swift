import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Helpers for the Kafka end-to-end tests: a `sluice dev kafka` broker per test (its own process,
/// random ports), `kcat` to feed and read topics, and `sluice run` processes that can be stopped with
/// SIGTERM or killed with SIGKILL. Everything a test starts is killed by `stop()`/`kill()`, which the
/// tests call from `defer`.
enum Kafka {
    /// `waitUntil` on a thread of its own (the conditions run kcat or read logs): tests call this, so
    /// that no thread of Swift Testing's cooperative pool is blocked.
    static func eventually(timeout: Double = 90, every: Double = 0.2,
                           _ condition: @escaping @Sendable () throws -> Bool) async throws -> Bool {
        try await offPool { try waitUntil(timeout: timeout, every: every, condition) }
    }

    /// Polls `condition` every `every` seconds until it holds or `timeout` seconds pass. Never used to
    /// assert timing: the timeout only keeps a broken run from hanging the suite. Blocking: for the
    /// helpers below, which tests call through `offPool`.
    @discardableResult
    static func waitUntil(timeout: Double = 90, every: Double = 0.2, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            if try condition() { return true }
            if Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: every)
        }
    }

    static func which(_ tool: String) -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return "/usr/bin/\(tool)"
    }

    static let kcat = which("kcat")

    /// `n` JSON events with a unique `seq` (start..<start+n), ~150 bytes each.
    static func seqEvents(_ n: Int, start: Int = 0) -> [String] {
        (start..<(start + n)).map { i in
            #"{"seq":\#(i),"kind":"\#(i % 3 == 0 ? "a" : "b")","name":"caf\u00e9 \#(i)","pad":"\#(String(repeating: "x", count: 80))"}"#
        }
    }

    /// The `seq` of an event line written by `seqEvents` (nil if absent).
    static func seq(_ line: String) -> Int? {
        guard let r = line.range(of: #""seq":"#) else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
    }

    /// nil when `actual` and `expected` hold the same lines the same number of times (any order);
    /// otherwise a short description of the difference.
    static func difference(_ actual: [String], _ expected: [String]) -> String? {
        let a = multiset(actual), e = multiset(expected)
        if a == e { return nil }
        var missing = 0, extra = 0, examples: [String] = []
        for (k, v) in e where v > a[k, default: 0] {
            missing += v - a[k, default: 0]
            if examples.count < 3 { examples.append("missing \(k)") }
        }
        for (k, v) in a where v > e[k, default: 0] {
            extra += v - e[k, default: 0]
            if examples.count < 6 { examples.append("extra \(k)") }
        }
        return "\(actual.count) lines, \(expected.count) expected: \(missing) missing, \(extra) extra; e.g. \(examples.joined(separator: " | "))"
    }

    /// How many times each element occurs.
    static func multiset<S: Sequence>(_ items: S) -> [S.Element: Int] where S.Element: Hashable {
        var m: [S.Element: Int] = [:]
        for x in items { m[x, default: 0] += 1 }
        return m
    }
}

/// A child process with stdout and stderr going to files (readable while it runs) and stdin a pipe.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let stdin = Pipe()
    let stdoutURL: URL
    let stderrURL: URL
    let name: String

    init(name: String, executable: String, arguments: [String], cwd: URL, logDir: URL, environment: [String: String] = [:]) throws {
        self.name = name
        let tag = "\(name)-\(UUID().uuidString.prefix(8))"
        stdoutURL = logDir.appendingPathComponent("\(tag).stdout")
        stderrURL = logDir.appendingPathComponent("\(tag).stderr")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = cwd
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardInput = stdin
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var stdoutText: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderrText: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }
    /// The last lines of stderr, for failure messages.
    var log: String { "[\(name)] " + stderrText.split(separator: "\n").suffix(25).joined(separator: "\n") }

    /// Waits for the exit; nil if it is still running after `timeout` seconds.
    func wait(timeout: Double) -> Int32? {
        guard !killed else { return nil }
        guard Kafka.waitUntil(timeout: timeout, every: 0.05, { !process.isRunning }) else { return nil }
        return waitForExit(process, timeout: 10)
    }

    /// SIGTERM, then the exit status (nil if it did not exit within `timeout`; it is then SIGKILLed).
    func terminate(timeout: Double = 60) -> Int32? {
        guard !killed else { return nil }
        guard process.isRunning else { return process.terminationStatus }
        Glibc.kill(pid, SIGTERM)
        if let status = wait(timeout: timeout) { return status }
        kill()
        return nil
    }

    /// SIGKILL and reap. Safe to call more than once, and on an exited process.
    func kill() {
        if !killed && process.isRunning {
            killed = true
            killAndReap(process)
        }
        try? stdin.fileHandleForWriting.close()
    }
    /// Killed and reaped here: never signalled again (its pid may be reused).
    private var killed = false
}

/// A `sluice dev kafka` process: a one-broker mock cluster on random 127.0.0.1 ports.
final class DevKafka: @unchecked Sendable {
    let child: ChildProcess
    let bootstrap: String
    let dir: URL
    let topics: [String: Int]
    private var answered = 0

    /// Starts the broker with `topics` (name -> partitions) and reads its bootstrap address.
    init(topics: [String: Int], dir: URL) throws {
        self.dir = dir
        self.topics = topics
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: true)
        var args = ["dev", "kafka"]
        for (name, partitions) in topics.sorted(by: { $0.key < $1.key }) { args += ["--topic", "\(name):\(partitions)"] }
        let child = try ChildProcess(name: "dev-kafka", executable: SluiceBinary.path, arguments: args, cwd: dir,
                                     logDir: dir.appendingPathComponent("logs"))
        self.child = child
        var first: String?
        Kafka.waitUntil(timeout: 30, every: 0.02) {
            let lines = child.stdoutText.split(separator: "\n")
            first = lines.first.map(String.init)
            return first != nil || !child.process.isRunning
        }
        guard let first, first.contains(":") else {
            child.kill()
            throw DevKafkaError(message: "dev kafka did not print its address: \(child.stderrText)")
        }
        bootstrap = first
        answered = 1
    }

    struct DevKafkaError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Sends one fault command (`down 1`, `errors Produce 5 NOT_ENOUGH_REPLICAS`, ...) and returns its answer.
    @discardableResult
    func command(_ line: String) throws -> String {
        child.stdin.fileHandleForWriting.write(Data((line + "\n").utf8))
        var answer: String?
        Kafka.waitUntil(timeout: 30, every: 0.02) {
            let lines = child.stdoutText.split(separator: "\n", omittingEmptySubsequences: true)
            if lines.count > answered { answer = String(lines[answered]); return true }
            return false
        }
        guard let answer else { throw DevKafkaError(message: "dev kafka: no answer to '\(line)'") }
        answered += 1
        guard answer == "ok" || answer.hasPrefix("ok ") else { throw DevKafkaError(message: "dev kafka: '\(line)': \(answer)") }
        return answer
    }

    func stop() { child.kill() }

    /// Produces `lines` (one message each, no key) with `kcat -P`, optionally to one partition.
    func produce(_ lines: [String], topic: String, partition: Int? = nil) throws {
        var args = ["-P", "-b", bootstrap, "-t", topic]
        if let partition { args += ["-p", String(partition)] }
        let r = try runKcat(args, stdin: lines.joined(separator: "\n") + "\n", timeout: 120)
        guard r.status == 0 else { throw DevKafkaError(message: "kcat -P \(topic): exit \(r.status): \(r.stderr)") }
    }

    /// Every message of `topic`, in partition order (`kcat -C -e`), formatted with `-f` if given.
    func consume(_ topic: String, format: String? = nil) throws -> [String] {
        var args = ["-C", "-b", bootstrap, "-t", topic, "-e", "-q"]
        if let format { args += ["-f", format] }
        let r = try runKcat(args, stdin: nil, timeout: 60)
        guard r.status == 0 else { throw DevKafkaError(message: "kcat -C \(topic): exit \(r.status): \(r.stderr)") }
        return r.stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// Number of messages in `topic`: the sum of its partitions' high watermarks (`kcat -Q`, cheap);
    /// 0 while the broker is unreachable.
    func count(_ topic: String) -> Int {
        endOffsets(topic).values.reduce(0, +)
    }

    /// The high watermark (offset of the next message) of each partition of `topic` (`kcat -Q`);
    /// empty while the broker is unreachable.
    func endOffsets(_ topic: String) -> [Int: Int] {
        var args = ["-Q", "-b", bootstrap]
        for p in 0..<(topics[topic] ?? 1) { args += ["-t", "\(topic):\(p):-1"] }
        guard let r = try? runKcat(args, stdin: nil, timeout: 30), r.status == 0 else { return [:] }
        var out: [Int: Int] = [:]
        for line in r.stdout.split(separator: "\n") {   // "plays [2] offset 750"
            guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]"),
                  let p = Int(line[line.index(after: open)..<close]),
                  let at = line.range(of: " offset "), let o = Int(line[at.upperBound...]) else { continue }
            out[p] = o
        }
        return out
    }

    /// Runs kcat with a timeout (kcat waits forever for a broker that is down).
    func runKcat(_ args: [String], stdin text: String?, timeout: Double) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = SluiceBinary.Running()
        p.process.executableURL = URL(fileURLWithPath: Kafka.kcat)
        p.process.arguments = args
        p.process.standardInput = p.stdin
        p.process.standardOutput = p.stdout
        p.process.standardError = p.stderr
        p.startReading()
        try p.process.run()
        let pid = p.process.processIdentifier
        if let text {
            let handle = p.stdin.fileHandleForWriting
            DispatchQueue.global().async {
                handle.write(Data(text.utf8))
                try? handle.close()
            }
        } else {
            try p.stdin.fileHandleForWriting.close()
        }
        if !Kafka.waitUntil(timeout: timeout, every: 0.02, { !p.process.isRunning }) { Glibc.kill(pid, SIGKILL) }
        let r = p.finish()
        return (r.status, r.stdout, r.stderr)
    }
}

/// A scratch directory for one Kafka test, with the shipped examples copied in when asked.
struct KafkaScratch {
    let dir: URL

    init(examples: Bool = false) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-kafka-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for sub in ["pipelines", "udfs", "data", "out", "logs"] where !examples || !["pipelines", "udfs", "data"].contains(sub) {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        if examples {
            for sub in ["pipelines", "udfs", "data"] {
                try FileManager.default.copyItem(at: SluiceBinary.root.appendingPathComponent(sub), to: dir.appendingPathComponent(sub))
            }
        }
    }

    /// Starts `sluice run SPEC` in the scratch dir (stdout/stderr to files under logs/).
    func run(_ spec: String, name: String = "sluice", environment: [String: String] = [:]) throws -> ChildProcess {
        try ChildProcess(name: name, executable: SluiceBinary.path, arguments: ["run", spec], cwd: dir,
                         logDir: dir.appendingPathComponent("logs"), environment: environment)
    }

    func remove() { try? FileManager.default.removeItem(at: dir) }
}

/// Feeds a topic from a background thread in chunks, so a pipeline sees a live stream.
final class Feeder: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var failure: String?
    private var stopped = false
    private var held = false
    private var busy = false
    /// Hold once this many lines are produced, unless `resume` came first.
    private var selfHold: Int?

    /// Produces `lines` in chunks of `chunk` messages, pausing `pause` seconds between chunks;
    /// with `holdAfter`, holds itself once that many lines are produced (until `resume`).
    init(_ kafka: DevKafka, topic: String, lines: [String], chunk: Int, pause: Double, holdAfter: Int? = nil) {
        selfHold = holdAfter
        let thread = Thread { [self] in
            var i = 0
            while i < lines.count {
                lock.withLock { if let h = selfHold, i >= h { selfHold = nil; held = true } }
                while lock.withLock({ held && !stopped }) { Thread.sleep(forTimeInterval: 0.01) }
                let go: Bool = lock.withLock {
                    if stopped { return false }
                    busy = true
                    return true
                }
                if !go { break }
                let part = Array(lines[i..<min(lines.count, i + chunk)])
                var error: String?
                do { try kafka.produce(part, topic: topic) } catch let e { error = "\(e)" }
                lock.withLock { busy = false; if let error { failure = error } }
                if error != nil { break }
                i += chunk
                Thread.sleep(forTimeInterval: pause)
            }
            done.signal()
        }
        thread.start()
    }

    /// Holds the feed between two chunks (returns once no chunk is being produced).
    func hold() {
        lock.withLock { held = true }
        while lock.withLock({ busy }) { Thread.sleep(forTimeInterval: 0.01) }
    }

    /// Lets a held feed go on (and cancels a `holdAfter` not reached yet).
    func resume() { lock.withLock { held = false; selfHold = nil } }

    /// Waits until everything was produced; returns the error if producing failed.
    func finish() -> String? {
        done.wait()
        done.signal()
        return lock.withLock { failure }
    }

    /// Stops after the current chunk (cleanup on failure).
    func cancel() { lock.withLock { stopped = true } }
}

/// The raw text of JSON values in a JSON object line, exactly as written (used to compute a
/// projection's expected bytes independently of the engine).
enum RawJSON {
    /// Top-level members of an object: key -> raw value text. Keys are taken verbatim (no escapes).
    static func members(_ text: Substring) -> [String: Substring] {
        let b = Array(text.utf8)
        var i = 0
        var out: [String: Substring] = [:]
        func ws() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 } }
        func skipString() {
            i += 1
            while i < b.count, b[i] != 0x22 { i += b[i] == 0x5C ? 2 : 1 }
            i += 1
        }
        func skipValue() {
            ws()
            guard i < b.count else { return }
            if b[i] == 0x22 { skipString(); return }
            if b[i] == 0x7B || b[i] == 0x5B {
                var depth = 0
                repeat {
                    if b[i] == 0x22 { skipString(); continue }
                    if b[i] == 0x7B || b[i] == 0x5B { depth += 1 }
                    if b[i] == 0x7D || b[i] == 0x5D { depth -= 1 }
                    i += 1
                } while i < b.count && depth > 0
                return
            }
            while i < b.count, ![0x2C, 0x7D, 0x5D, 0x20, 0x09, 0x0A, 0x0D].contains(b[i]) { i += 1 }
        }
        let utf8 = text.utf8
        func slice(_ from: Int, _ to: Int) -> Substring {
            Substring(utf8[utf8.index(utf8.startIndex, offsetBy: from)..<utf8.index(utf8.startIndex, offsetBy: to)])
        }
        ws()
        guard i < b.count, b[i] == 0x7B else { return [:] }
        i += 1
        while true {
            ws()
            guard i < b.count, b[i] == 0x22 else { return out }
            let keyStart = i + 1
            skipString()
            let key = String(slice(keyStart, i - 1))
            ws()
            guard i < b.count, b[i] == 0x3A else { return out }
            i += 1
            ws()
            let valueStart = i
            skipValue()
            out[key] = slice(valueStart, i)
            ws()
            guard i < b.count, b[i] == 0x2C else { return out }
            i += 1
        }
    }

    /// The raw value at a dotted path (`client.os`), if present.
    static func value(_ text: Substring, _ path: String) -> Substring? {
        var current = text
        for part in path.split(separator: ".") {
            guard let next = members(current)[String(part)] else { return nil }
            current = next
        }
        return current
    }
}
