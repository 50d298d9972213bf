import Foundation
import Testing
import Synchronization
@testable import SluiceRuntime
#if canImport(Glibc)
import Glibc
#endif

/// A write error part-way through a batch fails only the events not wholly written.
@Suite struct SinkOutputTests {
    @Test func aWriteErrorMidBatchFailsOnlyTheEventsNotWritten() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        // A non-blocking pipe nobody reads: writes stop with EAGAIN once its buffer is full.
        #expect(fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK) == 0)
        let line = String(repeating: "x", count: 1000)
        var batch = SinkBatch()
        for _ in 0..<200 { batch.append(Array(line.utf8)) }   // 200 KB, more than a pipe holds
        let failed = Mutex<[Int]?>(nil)
        DescriptorOutput(sink: "o", fd: fds[1]).send(batch) { f in failed.withLock { $0 = f.map(\.index) } }
        let indices = try #require(failed.withLock { $0 })
        // Read back what the pipe holds: every wholly written line is delivered, not failed.
        #expect(fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK) == 0)
        var written = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n <= 0 { break }
            written += n
        }
        let whole = written / 1001
        #expect(whole > 0 && whole < 200)
        #expect(indices == Array(whole..<200), "\(written) bytes written")
    }
}

/// Which events of a sink batch were written with distinct keys (so a key template may stop at
/// the first match) survives appending one batch to another.
@Suite struct SinkBatchTests {
    @Test func distinctKeyMarksFollowTheirEventsThroughAppends() {
        var a = SinkBatch()
        for i in 0..<70 { a.append(Array("{\"i\":\(i)}".utf8), distinctKeys: i % 3 == 0) }
        var b = SinkBatch()
        b.append(Array("{}".utf8))
        b.append(Array("{}".utf8), distinctKeys: true)
        b.append(contentsOf: a)
        #expect(b.count == 72)
        #expect((0..<72).filter { b.hasDistinctKeys($0) } == [1] + (0..<70).filter { $0 % 3 == 0 }.map { $0 + 2 })
        #expect(!b.hasDistinctKeys(72) && !SinkBatch().hasDistinctKeys(0))
        #expect(String(decoding: b.payload(2), as: UTF8.self) == #"{"i":0}"#)
    }
}
