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

/// The `sluice` binary: `SLUICE_BIN`, else the package's `.build/debug/sluice` (what `make test` just
/// built), else `.build-kafka/debug/sluice`.
func sluiceBinary() throws -> String {
    if let bin = ProcessInfo.processInfo.environment["SLUICE_BIN"], !bin.isEmpty { return bin }
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    for dir in [".build", ".build-kafka"] {
        let path = root.appendingPathComponent("\(dir)/debug/sluice").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw TestFailure("sluice binary not found: build it (swift build --scratch-path .build-kafka --product sluice) or set SLUICE_BIN")
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

    /// SIGTERM, then wait; returns the exit status.
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        return process.terminationStatus
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
    private let done = DispatchSemaphore(value: 0)

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
            self.done.signal()
        }
        thread.name = "test-consumer"
        thread.start()
    }

    var count: Int { events.withLock { $0.count } }

    /// Waits until at least `n` events arrived (or the timeout).
    @discardableResult
    func waitFor(_ n: Int, timeout: Double = 20) -> Bool {
        waitUntil(timeout: timeout) { self.count >= n }
    }

    /// Stops the poll loop (does not close the consumer).
    func stop() {
        stopFlag.store(true, ordering: .releasing)
        done.wait()
    }
}

/// Polls a condition every 10 ms until true or the timeout.
@discardableResult
func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// Produces messages and waits for every completion; returns the results in message order.
func produceAll(_ producer: KafkaProducerClient, _ messages: [KafkaMessage], topic: String,
                timeout: Double = 20) throws -> [Result<KafkaDelivery, KafkaError>] {
    let results = Mutex<[Int: Result<KafkaDelivery, KafkaError>]>([:])
    let calls = Atomic<Int>(0)
    producer.produce(messages, topic: topic) { index, result in
        calls.add(1, ordering: .relaxed)
        results.withLock { $0[index] = result }
    }
    guard waitUntil(timeout: timeout, { results.withLock { $0.count } == messages.count }) else {
        throw TestFailure("only \(results.withLock { $0.count }) of \(messages.count) completions within \(timeout) s")
    }
    usleep(50_000)
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
