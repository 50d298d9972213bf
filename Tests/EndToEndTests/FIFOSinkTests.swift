import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runs blocking work on a thread of its own and awaits it, keeping the cooperative pool free.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.start()
    }
}

/// Waits (polling, up to `timeout`) until `condition` holds; returns whether it did.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return condition()
}

/// A file sink on a FIFO nobody reads yet must not stall the other sinks (open(2) of a FIFO
/// blocks until a reader comes).
@Suite struct FIFOSinkTests {
    @Test func aFIFOWithoutAReaderDoesNotStallOtherSinks() async throws {
        let dir = try SluiceBinary.scratch()
        let fifo = dir.appendingPathComponent("out/pipe").path
        #expect(mkfifo(fifo, 0o644) == 0)
        try dir.write("""
        pipeline: fifo
        sources:
          s: { stdin: {} }
        sinks:
          piped: { from: s, file: { path: ../out/pipe }, queue: { capacity: 100, when_full: drop_newest } }
          plain: { from: s, file: { path: ../out/plain.jsonl } }
        """, to: "pipelines/p.yaml")
        let running = SluiceBinary.start(["run", "pipelines/p.yaml"], cwd: dir)
        try running.process.run()
        running.stdin.fileHandleForWriting.write(Data((1...3).map { #"{"n":\#($0)}"# + "\n" }.joined().utf8))
        try running.stdin.fileHandleForWriting.close()

        let plainWritten = await eventually { dir.lines("out/plain.jsonl").count == 3 }
        #expect(plainWritten, "the plain sink got nothing while the FIFO had no reader")

        // Now a reader arrives: the FIFO sink gets its events and the run ends.
        let piped: String = try await offPool {
            let fd = open(fifo, O_RDONLY)
            guard fd >= 0 else { return "open failed" }
            defer { close(fd) }
            var data = [UInt8]()
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(fd, &buf, buf.count)
                if n <= 0 { break }
                data += buf[0..<n]
            }
            return String(decoding: data, as: UTF8.self)
        }
        let result = try await offPool { running.finish() }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(piped.split(separator: "\n") == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":3}"#])
        #expect(dir.lines("out/plain.jsonl") == [#"{"n":1}"#, #"{"n":2}"#, #"{"n":3}"#])
    }
}
