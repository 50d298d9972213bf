import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// Splits a byte stream into lines (LF or CRLF) and groups them into batches of events.
/// Blank lines are skipped but still counted, so positions are real line numbers.
struct LineBatcher {
    let batchSize: Int
    private var partial: [UInt8] = []
    private var line: Int64 = 0
    private(set) var events: [Event] = []

    init(batchSize: Int) {
        self.batchSize = max(1, batchSize)
        events.reserveCapacity(self.batchSize)
    }

    /// Feeds a chunk; calls `flush` with each full batch.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, flush: ([Event]) -> Void) {
        guard let base = chunk.baseAddress else { return }
        var start = 0
        let count = chunk.count
        while start < count {
            guard let nl = memchr(base + start, 0x0A, count - start) else {
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<count]))
                return
            }
            let end = base.distance(to: UnsafeRawPointer(nl))
            if partial.isEmpty {
                addLine(UnsafeRawBufferPointer(rebasing: chunk[start..<end]))
            } else {
                partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<end]))
                let whole = partial
                partial.removeAll(keepingCapacity: true)
                whole.withUnsafeBytes { addLine($0) }
            }
            start = end + 1
            if events.count >= batchSize { flush(takeEvents()) }
        }
    }

    /// True while a line has started but its newline has not been read yet.
    var hasPartialLine: Bool { !partial.isEmpty }

    /// End of input: the last line may lack its newline.
    mutating func finish(flush: ([Event]) -> Void) {
        if !partial.isEmpty {
            let whole = partial
            partial.removeAll()
            whole.withUnsafeBytes { addLine($0) }
        }
        if !events.isEmpty { flush(takeEvents()) }
    }

    /// Hands out what has been collected so far (for sources that must not wait for a full batch).
    mutating func takeEvents() -> [Event] {
        let out = events
        events.removeAll(keepingCapacity: true)
        return out
    }

    private mutating func addLine(_ raw: UnsafeRawBufferPointer) {
        line += 1
        var n = raw.count
        if n > 0 && raw[n - 1] == 0x0D { n -= 1 }
        var blank = true
        for i in 0..<n where raw[i] != 0x20 && raw[i] != 0x09 { blank = false; break }
        if blank { return }
        events.append(Event(bytes: Array(UnsafeRawBufferPointer(rebasing: raw[0..<n])), position: line))
    }
}
