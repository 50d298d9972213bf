import CSluiceJSON

/// A message-key template such as `'{profile_id}'` or `'{a}:{b.c}'`, rendered against an event's JSON bytes.
///
/// - `{path}` is replaced by the value at a dotted path of the top-level object (`b.c` = field `c` of
///   object `b`): strings unquoted and unescaped; numbers, `true`/`false` exactly as written in the input;
///   objects and arrays as their raw JSON text.
/// - A missing field, a `null`, or input that is not a JSON object renders as the empty string (so
///   `'{a}:{b}'` with no `b` gives `"x:"`); `fields(in:)` tells which fields are missing, to reject if wanted.
/// - `{{` and `}}` are literal braces; everything else is copied as is.
/// A key template that does not parse: the template and what is wrong with it.
public struct KeyTemplateError: Error, Sendable, CustomStringConvertible {
    public var template: String
    public var message: String
    public var description: String { "key template '\(template)': \(message)" }
}

public struct KeyTemplate: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case literal([UInt8])
        /// A field path and its slot in `paths`.
        case field([UInt8], slot: Int)
    }

    let parts: [Part]
    /// Every field of the template, found together in one pass over an event.
    let paths: JSONPathSet
    /// The template text.
    public let description: String

    /// The dotted paths the template reads, in order.
    public var fields: [String] {
        parts.compactMap { if case .field(let p, _) = $0 { return String(decoding: p, as: UTF8.self) } else { return nil } }
    }

    public static func == (a: KeyTemplate, b: KeyTemplate) -> Bool { a.description == b.description }

    /// Parses a template; throws on an unclosed `{`, an empty `{}`, or a lone `}`.
    public init(_ template: String) throws(KeyTemplateError) {
        description = template
        var parts: [Part] = []
        var paths: [[String]] = []
        var literal: [UInt8] = []
        let b = Array(template.utf8)
        var i = 0
        func fail(_ why: String) -> KeyTemplateError {
            KeyTemplateError(template: template, message: "\(why) at character \(i + 1)")
        }
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "{") {
                if i + 1 < b.count && b[i + 1] == UInt8(ascii: "{") { literal.append(c); i += 2; continue }
                guard let close = b[(i + 1)...].firstIndex(of: UInt8(ascii: "}")) else { throw fail("unclosed '{'") }
                let path = Array(b[(i + 1)..<close])
                if path.isEmpty || path.contains(UInt8(ascii: "{")) { throw fail("expected a field path inside '{...}'") }
                if !literal.isEmpty { parts.append(.literal(literal)); literal = [] }
                parts.append(.field(path, slot: paths.count))
                paths.append(path.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
                    .map { String(decoding: $0, as: UTF8.self) })
                i = close + 1
            } else if c == UInt8(ascii: "}") {
                if i + 1 < b.count && b[i + 1] == UInt8(ascii: "}") { literal.append(c); i += 2; continue }
                throw fail("lone '}' (write '}}')")
            } else {
                literal.append(c); i += 1
            }
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        let set = JSONPathSet(paths)
        // Identical paths share a slot: point each field at its own.
        var slotted: [Part] = []
        for part in parts {
            if case .field(let p, let n) = part { slotted.append(.field(p, slot: set.slots[n])) } else { slotted.append(part) }
        }
        self.parts = slotted
        self.paths = set
    }

    /// Renders the key for one event's JSON bytes (expected to be a validated JSON object).
    public func render(_ json: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32)
        render(json[...], appendingTo: &out)
        return out
    }

    /// Renders the key like `render(_:)`, appended to `out` (so a batch's keys can share one buffer).
    /// `distinctKeys`: the bytes repeat no key in any object (see `JSONPathSet.find`).
    public func render(_ json: ArraySlice<UInt8>, distinctKeys: Bool = false, appendingTo out: inout [UInt8]) {
        json.withUnsafeBufferPointer { input in
            paths.find(in: UnsafeRawBufferPointer(input), distinctKeys: distinctKeys) { values in
                for part in parts {
                    switch part {
                    case .literal(let l): out.append(contentsOf: l)
                    case .field(_, let slot): Self.appendValue(input, Self.value(values, slot), to: &out)
                    }
                }
            }
        }
    }

    /// Renders the key into `out` (cleared first); false if a field is missing or null (the event has no key).
    public func renderComplete(_ json: ArraySlice<UInt8>, into out: inout [UInt8]) -> Bool {
        json.withUnsafeBufferPointer { input in
            paths.find(in: UnsafeRawBufferPointer(input)) { values in render(input, values, into: &out) }
        }
    }

    /// Validates `json` as a JSON object and renders the key in the same pass: the syntax error if
    /// it is not valid, else whether every field was there (as `renderComplete`).
    public func validateAndRenderComplete(_ json: ArraySlice<UInt8>, maxDepth: Int = JSONValidator.defaultMaxDepth,
                                          into out: inout [UInt8]) -> Result<Bool, JSONSyntaxError> {
        json.withUnsafeBufferPointer { input in
            paths.validateAndFind(UnsafeRawBufferPointer(input), maxDepth: maxDepth) { values in
                render(input, values, into: &out)
            }
        }
    }

    private func render(_ input: UnsafeBufferPointer<UInt8>, _ values: UnsafeBufferPointer<sj_value>,
                        into out: inout [UInt8]) -> Bool {
        out.removeAll(keepingCapacity: true)
        for part in parts {
            switch part {
            case .literal(let l): out.append(contentsOf: l)
            case .field(_, let slot):
                let v = Self.value(values, slot)
                if Int(v.type) == SJ_MISSING || Int(v.type) == SJ_NULL { return false }
                Self.appendValue(input, v, to: &out)
            }
        }
        return true
    }

    /// The fields of the template that are missing or null in `json`.
    public func missingFields(in json: [UInt8]) -> [String] {
        json.withUnsafeBufferPointer { input in
            paths.find(in: UnsafeRawBufferPointer(input)) { values in
                parts.compactMap { part -> String? in
                    guard case .field(let path, let slot) = part else { return nil }
                    let v = Self.value(values, slot)
                    return Int(v.type) == SJ_MISSING || Int(v.type) == SJ_NULL ? String(decoding: path, as: UTF8.self) : nil
                }
            }
        }
    }

    @inline(__always)
    private static func value(_ values: UnsafeBufferPointer<sj_value>, _ slot: Int) -> sj_value {
        slot >= 0 && slot < values.count ? values[slot] : sj_value()
    }

    private static func appendValue(_ input: UnsafeBufferPointer<UInt8>, _ v: sj_value, to out: inout [UInt8]) {
        guard let base = input.baseAddress, v.off + v.len <= input.count else { return }
        let span = UnsafeBufferPointer(start: base + v.off, count: v.len)
        switch Int(v.type) {
        case SJ_STRING:
            guard v.len > 2 else { return }   // "" renders as nothing
            let inner = UnsafeBufferPointer(rebasing: span[1..<(v.len - 1)])
            if !inner.contains(UInt8(ascii: "\\")) {
                out.append(contentsOf: inner)   // nothing escaped: the bytes are the value
                return
            }
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: v.len - 2))
            let n = out.withUnsafeMutableBufferPointer { o -> Int in
                guard let dst = o.baseAddress else { return -1 }
                return sj_string_decode(span.baseAddress, span.count, dst + start, v.len - 2)
            }
            if n < 0 || n > v.len - 2 { out.removeSubrange(start...); return }   // (size_t)-1: malformed
            out.removeSubrange((start + n)...)
        case SJ_NUMBER, SJ_BOOL, SJ_ARRAY, SJ_OBJECT:
            out.append(contentsOf: span)
        default:
            return   // missing or null: empty
        }
    }
}
