import CSluiceJSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `match:` spec compiled for evaluation directly on event bytes (never Lua).
///
/// Semantics (all clauses must hold; an empty spec matches everything):
/// - A missing field or a JSON null never satisfies a comparison: `eq`, `ne`, `in`, `not_in`,
///   `gt`, `gte`, `lt`, `lte` are all false for it. So `ne: x` and `not_in: [...]` mean
///   "present, not null, and different". A null operand (`eq: null`) therefore never matches;
///   test for null with `exists: false`.
/// - `exists: true` holds when the field is present and not null; `exists: false` when it is
///   missing or null. This mirrors Lua, where a JSON null reads as nil (`event.x ~= nil`).
/// - Numbers compare numerically across integers and floats (1 == 1.0); Int64 against Int64 is
///   exact, Int64 against a double is compared exactly too (no rounding of the integer).
/// - Strings compare by decoded value (escapes handled); `gt`/`gte`/`lt`/`lte` on strings
///   compare the UTF-8 bytes (which is code point order).
/// - Booleans support equality only; ordering across different types is false.
/// - Arrays and objects compare structurally for `eq`/`ne`/`in`/`not_in` (object key order
///   ignored); they never satisfy ordering operators.
/// - Paths descend through objects only; with duplicate keys the last one wins.
public struct CompiledMatch: Sendable {
    /// The path set this match looks up by itself (nil when it is part of a larger plan).
    let paths: JSONPathSet?
    let clauses: [Clause]
    let operands: [Operand]
    /// UTF-8 bytes of every string operand, concatenated.
    let stringBytes: [UInt8]
    let composites: [JSONValue]

    public init(_ spec: MatchSpec) {
        let set = JSONPathSet(spec.clauses.map(\.path))
        var i = 0
        self.init(spec, paths: set) { _ in defer { i += 1 }; return set.slots[i] }
    }

    /// Builds the clauses with `slot(path)` giving each clause's slot in `paths` (or in a shared
    /// set when `paths` is nil; -1 = never present). Called once per clause, in order.
    init(_ spec: MatchSpec, paths: JSONPathSet?, slot: ([String]) -> Int) {
        self.paths = paths
        var clauses: [Clause] = []
        var operands: [Operand] = []
        var strings: [UInt8] = []
        var composites: [JSONValue] = []
        func add(_ v: JSONValue) {
            switch v {
            case .null: operands.append(.null)
            case .bool(let b): operands.append(.bool(b))
            case .int(let i): operands.append(.int(i))
            case .double(let d): operands.append(.double(d))
            case .string(let s):
                let start = strings.count
                strings.append(contentsOf: s.utf8)
                operands.append(.string(start, strings.count - start))
            case .array, .object:
                composites.append(v)
                operands.append(.composite(composites.count - 1))
            }
        }
        for c in spec.clauses {
            let start = operands.count
            let kind: Kind
            switch c.op {
            case .eq(let v): kind = .anyOf; add(v)
            case .isIn(let vs): kind = .anyOf; vs.forEach(add)
            case .ne(let v): kind = .noneOf; add(v)
            case .notIn(let vs): kind = .noneOf; vs.forEach(add)
            case .gt(let v): kind = .gt; add(v)
            case .gte(let v): kind = .gte; add(v)
            case .lt(let v): kind = .lt; add(v)
            case .lte(let v): kind = .lte; add(v)
            case .exists(let b): kind = b ? .exists : .absent
            }
            clauses.append(Clause(slot: slot(c.path), kind: kind, start: start, count: operands.count - start))
        }
        self.clauses = clauses
        self.operands = operands
        self.stringBytes = strings
        self.composites = composites
    }

    /// Whether `event` (a JSON object the validator accepted) satisfies every clause.
    public func matches(_ event: UnsafeRawBufferPointer) -> Bool {
        guard let paths, !clauses.isEmpty else { return true }
        return paths.find(in: event) { values in holds(values, event) }
    }

    public func matches(_ event: [UInt8]) -> Bool {
        event.withUnsafeBytes { matches($0) }
    }

    /// Evaluates the clauses on values already found (slots as given at init).
    func holds(_ values: UnsafeBufferPointer<sj_value>, _ event: UnsafeRawBufferPointer) -> Bool {
        clauses.withUnsafeBufferPointer { cs in
            operands.withUnsafeBufferPointer { ops in
                stringBytes.withUnsafeBufferPointer { strs in
                    for c in cs {
                        let v = c.slot >= 0 ? values[c.slot] : sj_value()
                        if !holds(c, v, event, ops, strs) { return false }
                    }
                    return true
                }
            }
        }
    }

    @inline(__always)
    private func holds(_ c: Clause, _ v: sj_value, _ event: UnsafeRawBufferPointer,
                       _ ops: UnsafeBufferPointer<Operand>, _ strs: UnsafeBufferPointer<UInt8>) -> Bool {
        let present = v.type != Int32(SJ_MISSING) && v.type != Int32(SJ_NULL)
        switch c.kind {
        case .exists: return present
        case .absent: return !present
        default: break
        }
        guard present else { return false }
        let span = UnsafeRawBufferPointer(rebasing: event[v.off..<(v.off + v.len)])
        switch c.kind {
        case .anyOf:
            for i in c.start..<(c.start + c.count) where equals(ops[i], v.type, span, strs) { return true }
            return false
        case .noneOf:
            for i in c.start..<(c.start + c.count) where equals(ops[i], v.type, span, strs) { return false }
            return true
        case .gt, .gte, .lt, .lte:
            guard c.count == 1, let o = order(ops[c.start], v.type, span, strs) else { return false }
            switch c.kind {
            case .gt: return o > 0
            case .gte: return o >= 0
            case .lt: return o < 0
            default: return o <= 0
            }
        case .exists, .absent:
            return false
        }
    }

    enum Kind: UInt8, Sendable {
        /// `eq` and `in`: equals one of the operands.
        case anyOf
        /// `ne` and `not_in`: present, not null, equal to none.
        case noneOf
        case gt, gte, lt, lte
        /// `exists: true` / `exists: false`.
        case exists, absent
    }

    struct Clause: Sendable {
        var slot: Int
        var kind: Kind
        var start: Int
        var count: Int
    }

    /// A match operand prepared for comparison with raw spans (a trivial type: no refcounting).
    enum Operand: Sendable {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        /// Range in `stringBytes`.
        case string(Int, Int)
        /// Index in `composites`.
        case composite(Int)
    }

    /// Equality of the event value (present, not null) with an operand.
    @inline(__always)
    private func equals(_ o: Operand, _ type: Int32, _ span: UnsafeRawBufferPointer,
                        _ strs: UnsafeBufferPointer<UInt8>) -> Bool {
        switch o {
        case .null:
            return false
        case .bool(let b):
            guard type == Int32(SJ_BOOL), let first = span.first else { return false }
            return (first == UInt8(ascii: "t")) == b
        case .int, .double:
            guard type == Int32(SJ_NUMBER) else { return false }
            return order(o, type, span, strs) == 0
        case .string(let start, let count):
            guard type == Int32(SJ_STRING) else { return false }
            // Fast path: unescaped span of the same length.
            if span.count == count + 2 {
                let inner = UnsafeRawBufferPointer(rebasing: span[1..<(span.count - 1)])
                if !inner.contains(UInt8(ascii: "\\")) {
                    return count == 0 || memcmp(inner.baseAddress!, strs.baseAddress! + start, count) == 0
                }
            }
            return sj_string_eq(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count,
                                strs.baseAddress.map { $0 + start }, count) != 0
        case .composite(let i):
            guard type == Int32(SJ_ARRAY) || type == Int32(SJ_OBJECT) else { return false }
            guard let parsed = JSONValue.parseSpan(span) else { return false }
            return parsed == composites[i]
        }
    }

    /// Sign of (event value - operand) for comparable types; nil if not comparable.
    @inline(__always)
    private func order(_ o: Operand, _ type: Int32, _ span: UnsafeRawBufferPointer,
                       _ strs: UnsafeBufferPointer<UInt8>) -> Int? {
        switch o {
        case .int(let k):
            guard type == Int32(SJ_NUMBER) else { return nil }
            var i: Int64 = 0, d: Double = 0
            switch sj_parse_number(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count, &i, &d) {
            case Int32(SJ_NUM_INT): return i < k ? -1 : (i > k ? 1 : 0)
            case Int32(SJ_NUM_DOUBLE): return d.isNaN ? nil : -NumericCompare.intVsDouble(k, d)
            default: return nil
            }
        case .double(let k):
            guard type == Int32(SJ_NUMBER), !k.isNaN else { return nil }
            var i: Int64 = 0, d: Double = 0
            switch sj_parse_number(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count, &i, &d) {
            case Int32(SJ_NUM_INT): return NumericCompare.intVsDouble(i, k)
            case Int32(SJ_NUM_DOUBLE):
                if d.isNaN { return nil }
                return d < k ? -1 : (d > k ? 1 : 0)
            default: return nil
            }
        case .string(let start, let count):
            guard type == Int32(SJ_STRING) else { return nil }
            return Int(sj_string_cmp(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count,
                                     strs.baseAddress.map { $0 + start }, count))
        case .null, .bool, .composite:
            return nil
        }
    }
}

enum NumericCompare {
    /// Exact sign of (i - d) for an Int64 and a non-NaN double.
    static func intVsDouble(_ i: Int64, _ d: Double) -> Int {
        if d >= 9223372036854775808.0 { return -1 }   // 2^63 and above (incl. +inf)
        if d < -9223372036854775808.0 { return 1 }    // below -2^63 (incl. -inf)
        let t = d.rounded(.towardZero)
        let ti = Int64(t)                              // exact: |t| < 2^63 or t == -2^63
        if i < ti { return -1 }
        if i > ti { return 1 }
        let frac = d - t
        return frac > 0 ? -1 : (frac < 0 ? 1 : 0)
    }
}
