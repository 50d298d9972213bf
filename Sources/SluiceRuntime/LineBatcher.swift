import SluiceCore
#if canImport(Glibc)
import Glibc
#endif

/// Splits a byte stream into lines (LF or CRLF) and groups them into batches of events.
/// Blank lines are skipped but still counted, so positions are real line numbers.
struct LineBatcher {
    let batchSize: Int
    /// A longer line is cut to this many bytes (the rest, up to its newline, is skipped), so an
    /// unfinished line never holds more: pass `max_event_bytes + 1` and the worker dead-letters it.
    let maxLineBytes: Int
    private var partial: [UInt8] = []
    /// Inside a line that was cut: skip bytes until its newline.
    private var skipping = false
    private var line: Int64 = 0
    private(set) var events: [Event] = []
    /// Bytes fed before the current chunk, and the offset just past the last whole line taken.
    private var base: Int64 = 0
    private var consumed: Int64 = 0

    /// Where the input stands after the events handed out so far: the byte offset just past the
    /// last whole line, and its line number (what a checkpoint records to resume from).
    struct Mark: Sendable, Equatable {
        var offset: Int64
        var line: Int64
    }

    /// Read from `start` on (a restored position): offsets and line numbers continue from it.
    init(batchSize: Int, maxLineBytes: Int = EventLimits.defaultMaxEventBytes + 1, start: Mark = Mark(offset: 0, line: 0)) {
        self.batchSize = max(1, batchSize)
        self.maxLineBytes = max(1, maxLineBytes)
        events.reserveCapacity(self.batchSize)
        base = start.offset; consumed = start.offset; line = start.line
    }

    /// The position after the last line taken (valid between calls, e.g. after `takeEvents`).
    var mark: Mark { Mark(offset: consumed, line: line) }

    /// Feeds a chunk; calls `flush` with each full batch. Events are slices of `chunk` (no copy per
    /// line); only a line split across chunks is copied.
    mutating func feed(_ chunk: [UInt8], flush: ([Event]) -> Void) {
        feed(chunk) { events, _ in flush(events) }
    }

    /// `feed`, also passing the position just past each flushed batch's last line.
    mutating func feed(_ chunk: [UInt8], flush: ([Event], Mark) -> Void) {
        defer { base += Int64(chunk.count) }
        let count = chunk.count
        var start = 0
        while start < count {
            let found: Int? = chunk.withUnsafeBytes { raw in
                guard let nl = memchr(raw.baseAddress! + start, 0x0A, count - start) else { return nil }
                return raw.baseAddress!.distance(to: UnsafeRawPointer(nl))
            }
            guard let end = found else {
                appendPartial(chunk[start..<count])
                return
            }
            if skipping {
                skipping = false   // the newline ends the line that was cut; it was emitted already
            } else if partial.isEmpty && end - start <= maxLineBytes {
                addLine(chunk, start..<end)
            } else {
                appendPartial(chunk[start..<end])
                if skipping { skipping = false } else {
                    let whole = partial
                    partial = []
                    addLine(whole, 0..<whole.count)
                }
            }
            start = end + 1
            consumed = base + Int64(start)
            if events.count >= batchSize { flush(takeEvents(), mark) }
        }
    }

    /// True while a line has started but its newline has not been read yet.
    var hasPartialLine: Bool { !partial.isEmpty || skipping }

    /// Bytes of the unfinished line held now (at most `maxLineBytes`).
    var partialLineBytes: Int { partial.count }

    /// Adds bytes of an unfinished line; at `maxLineBytes` the line is emitted cut and the rest skipped.
    private mutating func appendPartial(_ bytes: ArraySlice<UInt8>) {
        if skipping { return }
        let room = maxLineBytes - partial.count
        if bytes.count <= room {
            partial.append(contentsOf: bytes)
            return
        }
        partial.append(contentsOf: bytes.prefix(room))
        let whole = partial
        partial = []
        addLine(whole, 0..<whole.count)
        skipping = true
    }

    /// End of input: the last line may lack its newline.
    mutating func finish(flush: ([Event]) -> Void) {
        finish { events, _ in flush(events) }
    }

    mutating func finish(flush: ([Event], Mark) -> Void) {
        skipping = false
        if !partial.isEmpty {
            let whole = partial
            partial = []
            addLine(whole, 0..<whole.count)
        }
        consumed = base
        if !events.isEmpty { flush(takeEvents(), mark) }
    }

    /// The file being read ended for good (truncated, rotated or replaced): its last line may lack
    /// its newline; positions of the next file start again at line 1, offset 0.
    mutating func endOfFile(flush: ([Event]) -> Void) {
        endOfFile { events, _ in flush(events) }
    }

    mutating func endOfFile(flush: ([Event], Mark) -> Void) {
        finish(flush: flush)
        line = 0
        base = 0
        consumed = 0
    }

    /// Hands out what has been collected so far (for sources that must not wait for a full batch).
    mutating func takeEvents() -> [Event] {
        let out = events
        events.removeAll(keepingCapacity: true)
        return out
    }

    private mutating func addLine(_ storage: [UInt8], _ range: Range<Int>) {
        line += 1
        var end = range.upperBound
        if end > range.lowerBound && storage[end - 1] == 0x0D { end -= 1 }
        var blank = true
        for i in range.lowerBound..<end where storage[i] != 0x20 && storage[i] != 0x09 { blank = false; break }
        if blank { return }
        events.append(Event(slice: storage[range.lowerBound..<end], position: line))
    }
}
