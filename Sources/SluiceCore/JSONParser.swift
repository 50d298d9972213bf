import CSluiceJSON

extension JSONValue {
    /// Parses one JSON text into a `JSONValue` (any top-level value).
    ///
    /// The input is first checked by the strict validator (so errors carry its message and
    /// offset, and nesting is capped at `maxDepth`), then built. Integers without fraction or
    /// exponent that fit in Int64 become `.int`; other numbers `.double`. Object keys keep
    /// document order; with duplicate keys the last value wins, at the first key's position.
    /// Not for the event hot path.
    public static func parse(_ bytes: some Collection<UInt8>,
                             maxDepth: Int = JSONValidator.defaultMaxDepth) throws(JSONSyntaxError) -> JSONValue {
        let result: Result<JSONValue, JSONSyntaxError> = withContiguousBytes(bytes) { raw in
            if let err = JSONValidator.validate(raw, maxDepth: maxDepth) { return .failure(err) }
            var builder = Builder(raw: raw, pos: 0)
            return .success(builder.value())
        }
        return try result.get()
    }

    /// Parses JSON text given as a Swift string.
    public static func parse(_ text: String) throws(JSONSyntaxError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// Parses the raw bytes of one value found by a lookup (assumes nothing about validity).
    static func parseSpan(_ raw: UnsafeRawBufferPointer) -> JSONValue? {
        if JSONValidator.validate(raw) != nil { return nil }
        var builder = Builder(raw: raw, pos: 0)
        return builder.value()
    }
}

@inline(__always)
private func withContiguousBytes<C: Collection<UInt8>, R>(_ bytes: C, _ body: (UnsafeRawBufferPointer) -> R) -> R {
    if let r = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return r }
    return Array(bytes).withUnsafeBytes(body)
}

/// Builds values from input the validator accepted (so it can trust the syntax).
/// Recursion depth is bounded by the validator's depth cap.
private struct Builder {
    let raw: UnsafeRawBufferPointer
    var pos: Int

    @inline(__always) mutating func skipWS() {
        while pos < raw.count {
            let c = raw[pos]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { pos += 1 } else { break }
        }
    }

    mutating func value() -> JSONValue {
        skipWS()
        guard pos < raw.count else { return .null }
        switch raw[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            var members: [(String, JSONValue)] = []
            var index: [String: Int] = [:]
            skipWS()
            if pos < raw.count, raw[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            while pos < raw.count {
                skipWS()
                let key = string()
                skipWS()
                pos += 1 // ':'
                let v = value()
                if let i = index[key] {
                    members[i].1 = v
                } else {
                    index[key] = members.count
                    members.append((key, v))
                }
                skipWS()
                guard pos < raw.count else { break }
                let c = raw[pos]
                pos += 1
                if c == UInt8(ascii: "}") { break }
            }
            return .object(members)
        case UInt8(ascii: "["):
            pos += 1
            var items: [JSONValue] = []
            skipWS()
            if pos < raw.count, raw[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while pos < raw.count {
                items.append(value())
                skipWS()
                guard pos < raw.count else { break }
                let c = raw[pos]
                pos += 1
                if c == UInt8(ascii: "]") { break }
            }
            return .array(items)
        case UInt8(ascii: "\""):
            return .string(string())
        case UInt8(ascii: "t"):
            pos += 4; return .bool(true)
        case UInt8(ascii: "f"):
            pos += 5; return .bool(false)
        case UInt8(ascii: "n"):
            pos += 4; return .null
        default:
            return number()
        }
    }

    /// pos at the opening quote; leaves pos after the closing quote.
    mutating func string() -> String {
        let start = pos
        pos += 1
        var escaped = false
        while pos < raw.count {
            let c = raw[pos]
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") { escaped = true; pos += 2; continue }
            pos += 1
        }
        let end = min(pos + 1, raw.count)
        pos = end
        if !escaped {
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[(start + 1)..<max(start + 1, end - 1)]), as: UTF8.self)
        }
        let span = UnsafeRawBufferPointer(rebasing: raw[start..<end])
        return JSONSpan.decodeString(span) ?? ""
    }

    mutating func number() -> JSONValue {
        let start = pos
        while pos < raw.count {
            let c = raw[pos]
            if (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-") || c == UInt8(ascii: "+")
                || c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                pos += 1
            } else { break }
        }
        return JSONSpan.number(UnsafeRawBufferPointer(rebasing: raw[start..<pos])) ?? .null
    }
}

/// Helpers over raw value spans (as returned by path lookups).
public enum JSONSpan {
    /// Decodes a JSON string span (with quotes). Nil if it is not a well-formed string span.
    public static func decodeString(_ span: UnsafeRawBufferPointer) -> String? {
        guard span.count >= 2 else { return nil }
        let base = span.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let cap = span.count - 2
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(cap, 1)) { buf -> String? in
            let n = sj_string_decode(base, span.count, buf.baseAddress, cap)
            if n < 0 || n > cap { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: buf[0..<Int(n)]), as: UTF8.self)
        }
    }

    /// Parses a number span: `.int` for integer literals that fit Int64, else `.double`.
    public static func number(_ span: UnsafeRawBufferPointer) -> JSONValue? {
        var i: Int64 = 0
        var d: Double = 0
        switch sj_parse_number(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count, &i, &d) {
        case Int32(SJ_NUM_INT): return .int(i)
        case Int32(SJ_NUM_DOUBLE): return .double(d)
        default: return nil
        }
    }
}
