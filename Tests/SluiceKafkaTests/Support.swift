import Foundation
import Synchronization
import SluiceCore
@testable import SluiceKafka
#if canImport(Glibc)
import Glibc
#endif

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The `sluice` binary: `SLUICE_BIN`, else the package's `.build/debug/sluice` (what `make test` and
/// `swift build --build-tests` just built). Never an older build elsewhere: a stale binary would test old code.
func sluiceBinary() throws -> String {
    if let bin = ProcessInfo.processInfo.environment["SLUICE_BIN"], !bin.isEmpty { return bin }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let path = root.appendingPathComponent(".build/debug/sluice").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw TestFailure("sluice binary not found at \(path): run `swift build --build-tests` (or `make test`) first, or set SLUICE_BIN")
    }
    return path
}

/// Runs a blocking `body` on a thread of its own, never on Swift Testing's cooperative pool.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// `sluice dev kafka` running as a separate process; commands go to its stdin, answers come from its stdout.
/// Used by one test at a time (not shared across threads).
final class DevKafkaProcess: @unchecked Sendable {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    private(set) var bootstrap = ""
    private var buffer: [UInt8] = []

    init(_ arguments: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: try sluiceBinary())
        process.arguments = ["dev", "kafka"] + arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard let first = readLine(timeout: 10) else {
            process.terminate()
            throw TestFailure("dev kafka printed no bootstrap line")
        }
        bootstrap = first
    }

    deinit { stop() }

    /// Sends one command line and returns its one-line answer.
    func command(_ line: String) throws -> String {
        input.fileHandleForWriting.write(Data((line + "\n").utf8))
        guard let answer = readLine(timeout: 10) else { throw TestFailure("no answer to '\(line)'") }
        return answer
    }

    func readLine(timeout: Double) -> String? {
        let fd = output.fileHandleForReading.fileDescriptor
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                return line
            }
            let remaining = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            if remaining == 0 { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, remaining) <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// SIGTERM, without waiting for the exit (usable in `defer`; Foundation reaps the process).
    func stop() {
        if process.isRunning { process.terminate() }
    }

    /// SIGTERM, then waits (off the cooperative pool) for the exit; returns the exit status.
    func stopAndWait() async throws -> Int32 {
        stop()
        return try await offPool { [self] in process.waitUntilExit(); return process.terminationStatus }
    }
}

/// Collects log lines (thread-safe) and can echo them for debugging (`SLUICE_TEST_LOG=1`).
final class LogSink: Sendable {
    let lines = Mutex<[String]>([])
    let echo = ProcessInfo.processInfo.environment["SLUICE_TEST_LOG"] != nil
    var log: KafkaLog {
        { [self] level, message in
            lines.withLock { $0.append("\(level): \(message)") }
            if echo { FileHandle.standardError.write(Data("\(Date().timeIntervalSince1970) [\(level)] \(message)\n".utf8)) }
        }
    }
    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }
}

/// Runs a consumer's poll loop on its own thread, collecting events.
final class ConsumerRun: Sendable {
    let consumer: KafkaConsumerClient
    let events = Mutex<[Event]>([])
    let stopFlag = Atomic<Bool>(false)
    let accept = Atomic<Bool>(true)
    let offers = Atomic<Int>(0)
    private let finished = Atomic<Bool>(false)

    init(_ consumer: KafkaConsumerClient, batchSize: Int = 100, onBatch: (@Sendable ([Event]) -> Void)? = nil) {
        self.consumer = consumer
        let thread = Thread { [self] in
            consumer.run(batchSize: batchSize, stop: { self.stopFlag.load(ordering: .acquiring) }) { batch in
                self.offers.add(1, ordering: .relaxed)
                guard self.accept.load(ordering: .acquiring) else { return false }
                self.events.withLock { $0.append(contentsOf: batch) }
                onBatch?(batch)
                return true
            }
            self.finished.store(true, ordering: .releasing)
        }
        thread.name = "test-consumer"
        thread.start()
    }

    var count: Int { events.withLock { $0.count } }

    /// Waits until at least `n` events arrived (or the timeout).
    func waitFor(_ n: Int, timeout: Double = 20) async -> Bool {
        await waitUntil(timeout: timeout) { self.count >= n }
    }

    /// Stops the poll loop (does not close the consumer); true once it has returned.
    @discardableResult
    func stop() async -> Bool {
        stopFlag.store(true, ordering: .releasing)
        return await waitUntil(timeout: 30) { self.finished.load(ordering: .acquiring) }
    }
}

/// Polls a condition every 10 ms (with `Task.sleep`, blocking no thread) until true or the timeout.
func waitUntil(timeout: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

/// The text of the marker events `consumeMarkers` produces; tests leave them out of what they compare.
let markerText = "end-of-test-marker"

/// Produces one marker event to each of `partitions` partitions of `topic`, after everything the test
/// produced, and waits until `runs` together have consumed all of them. Events arrive in offset order
/// within a partition, so once every marker is in, anything the consumers would get twice or in excess
/// has arrived before it: what they hold is final (no fixed sleep needed). False on timeout.
func consumeMarkers(_ producer: KafkaProducerClient, topic: String, partitions: Int32, runs: [ConsumerRun],
                    timeout: Double = 20) async throws -> Bool {
    let markers = (0..<partitions).map { KafkaMessage(value: Array(markerText.utf8), partition: $0) }
    let results = try await produceAll(producer, markers, topic: topic)
    guard results.allSatisfy({ if case .success = $0 { true } else { false } }) else {
        throw TestFailure("markers not delivered: \(results)")
    }
    return await waitUntil(timeout: timeout) {
        runs.reduce(0) { n, run in n + run.events.withLock { $0.filter { $0.text == markerText }.count } } == Int(partitions)
    }
}

extension ConsumerRun {
    /// What was consumed, without the markers of `consumeMarkers`.
    var testEvents: [Event] { events.withLock { $0.filter { $0.text != markerText } } }
}

/// Produces messages and waits for every completion; returns the results in message order.
func produceAll(_ producer: KafkaProducerClient, _ messages: [KafkaMessage], topic: String,
                timeout: Double = 20) async throws -> [Result<KafkaDelivery, KafkaError>] {
    let results = Mutex<[Int: Result<KafkaDelivery, KafkaError>]>([:])
    let calls = Atomic<Int>(0)
    producer.produce(messages, topic: topic) { index, result in
        calls.add(1, ordering: .relaxed)
        results.withLock { $0[index] = result }
    }
    guard await waitUntil(timeout: timeout, { results.withLock { $0.count } == messages.count }) else {
        throw TestFailure("only \(results.withLock { $0.count }) of \(messages.count) completions within \(timeout) s")
    }
    // A second completion for a message would come from the same round of delivery reports as the
    // first: 50 ms more lets it show up before the count of calls is checked.
    try await Task.sleep(for: .milliseconds(50))
    if calls.load(ordering: .relaxed) != messages.count {
        throw TestFailure("\(calls.load(ordering: .relaxed)) completions for \(messages.count) messages")
    }
    return results.withLock { r in (0..<messages.count).map { r[$0]! } }
}

func uniqueName(_ prefix: String) -> String { "\(prefix)-\(UInt32.random(in: 0...UInt32.max))" }

/// A consumer with test-friendly timings (fast group joins on the mock cluster).
func makeConsumer(_ broker: DevKafkaProcess, group: String, topics: [String], log: LogSink,
                  options: [String: String] = [:], prefetchKBytes: Int = 16 * 1024) throws -> KafkaConsumerClient {
    var opts = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500", "auto.commit.interval.ms": "200"]
    opts.merge(options) { _, new in new }
    return try KafkaConsumerClient(
        config: KafkaConsumerConfig(brokers: broker.bootstrap, group: group, topics: topics, start: .earliest,
                                    options: opts, prefetchKBytes: prefetchKBytes),
        log: log.log)
}
