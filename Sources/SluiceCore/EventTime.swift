import CSluiceJSON

/// Event time in milliseconds since the epoch, read from an event's JSON bytes.
public enum EventTime {
    /// No time (the field is missing or unparsable), and the watermark before any event.
    public static let missing = Int64.min
    /// The watermark of an input that has ended: every window closes, every held result is emitted.
    public static let infinity = Int64.max

    /// The time at a dotted path: an integer (ms), a number with a fraction (ms, truncated) or an
    /// RFC 3339 string. nil when missing, null, or not a time.
    public static func read(_ json: UnsafeRawBufferPointer, path: [UInt8]) -> Int64? {
        guard let base = json.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return nil }
        var v = sj_value()
        _ = path.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { sj_find(base, json.count, $0.baseAddress, $0.count, &v) }
        }
        guard v.off + v.len <= json.count else { return nil }
        let span = UnsafeBufferPointer(start: base + v.off, count: v.len)
        switch Int(v.type) {
        case SJ_NUMBER:
            var i: Int64 = 0
            var d: Double = 0
            switch sj_parse_number(span.baseAddress, span.count, &i, &d) {
            case Int32(SJ_NUM_INT): return i
            case Int32(SJ_NUM_DOUBLE): return d.isFinite && abs(d) < 9.2e18 ? Int64(d) : nil
            default: return nil
            }
        case SJ_STRING:
            guard span.count >= 2 else { return nil }
            return parseRFC3339(UnsafeBufferPointer(rebasing: span[1..<(span.count - 1)]))
        default:
            return nil
        }
    }

    /// `2026-11-30T12:00:00Z`, `2026-11-30T12:00:00.123+01:00` (also a space or `t` for `T`, `z` for `Z`).
    public static func parseRFC3339<C: Collection>(_ s: C) -> Int64? where C.Element == UInt8, C.Index == Int {
        let b = Array(s)
        var i = 0
        func digits(_ n: Int) -> Int64? {
            guard i + n <= b.count else { return nil }
            var v: Int64 = 0
            for k in 0..<n {
                let c = b[i + k]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
            }
            i += n
            return v
        }
        func expect(_ c: UInt8...) -> Bool {
            guard i < b.count, c.contains(b[i]) else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(0x2D), let month = digits(2), expect(0x2D), let day = digits(2),
              expect(0x54, 0x74, 0x20), let hour = digits(2), expect(0x3A), let minute = digits(2), expect(0x3A),
              let second = digits(2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return nil }
        var millis: Int64 = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var scale: Int64 = 100
            var any = false
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                millis += Int64(b[i] - 0x30) * scale
                scale /= 10
                i += 1
                any = true
            }
            guard any else { return nil }
        }
        var offset: Int64 = 0
        if expect(0x5A, 0x7A) {
            offset = 0
        } else if i < b.count, b[i] == 0x2B || b[i] == 0x2D {
            let sign: Int64 = b[i] == 0x2D ? -1 : 1
            i += 1
            guard let oh = digits(2), expect(0x3A), let om = digits(2), oh < 24, om < 60 else { return nil }
            offset = sign * (oh * 60 + om) * 60_000
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis - offset
    }
}
