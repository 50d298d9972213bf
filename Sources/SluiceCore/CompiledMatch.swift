import CSluiceJSON

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
    let paths: JSONPathSet
    let clauses: [Clause]

    public init(_ spec: MatchSpec) {
        paths = JSONPathSet(spec.clauses.map(\.path))
        var clauses: [Clause] = []
        for (i, c) in spec.clauses.enumerated() {
            clauses.append(Clause(slot: paths.slots[i], op: Op(c.op)))
        }
        self.clauses = clauses
    }

    /// Whether `event` (a JSON object the validator accepted) satisfies every clause.
    public func matches(_ event: UnsafeRawBufferPointer) -> Bool {
        if clauses.isEmpty { return true }
        return paths.find(in: event) { values in
            for c in clauses {
                let v = c.slot >= 0 ? values[c.slot] : sj_value()
                if !c.op.holds(v, event) { return false }
            }
            return true
        }
    }

    public func matches(_ event: [UInt8]) -> Bool {
        event.withUnsafeBytes { matches($0) }
    }

    struct Clause: Sendable {
        var slot: Int
        var op: Op
    }

    enum Ordering: Sendable { case gt, gte, lt, lte }

    enum Op: Sendable {
        case eq(Operand)
        case ne(Operand)
        case isIn([Operand])
        case notIn([Operand])
        case compare(Ordering, Operand)
        case exists(Bool)

        init(_ op: MatchOp) {
            switch op {
            case .eq(let v): self = .eq(Operand(v))
            case .ne(let v): self = .ne(Operand(v))
            case .isIn(let vs): self = .isIn(vs.map(Operand.init))
            case .notIn(let vs): self = .notIn(vs.map(Operand.init))
            case .gt(let v): self = .compare(.gt, Operand(v))
            case .gte(let v): self = .compare(.gte, Operand(v))
            case .lt(let v): self = .compare(.lt, Operand(v))
            case .lte(let v): self = .compare(.lte, Operand(v))
            case .exists(let b): self = .exists(b)
            }
        }

        @inline(__always)
        func holds(_ v: sj_value, _ event: UnsafeRawBufferPointer) -> Bool {
            let present = v.type != Int32(SJ_MISSING) && v.type != Int32(SJ_NULL)
            if case .exists(let want) = self { return present == want }
            guard present else { return false }
            let span = UnsafeRawBufferPointer(rebasing: event[v.off..<(v.off + v.len)])
            switch self {
            case .eq(let o): return o.equals(v.type, span)
            case .ne(let o): return !o.equals(v.type, span)
            case .isIn(let os):
                for o in os where o.equals(v.type, span) { return true }
                return false
            case .notIn(let os):
                for o in os where o.equals(v.type, span) { return false }
                return true
            case .compare(let ord, let o):
                guard let c = o.order(v.type, span) else { return false }
                switch ord {
                case .gt: return c > 0
                case .gte: return c >= 0
                case .lt: return c < 0
                case .lte: return c <= 0
                }
            case .exists: return true
            }
        }
    }

    /// A match operand prepared for comparison with raw spans.
    enum Operand: Sendable {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case string([UInt8])
        case composite(JSONValue)

        init(_ v: JSONValue) {
            switch v {
            case .null: self = .null
            case .bool(let b): self = .bool(b)
            case .int(let i): self = .int(i)
            case .double(let d): self = .double(d)
            case .string(let s): self = .string(Array(s.utf8))
            case .array, .object: self = .composite(v)
            }
        }

        /// Equality of the event value (present, not null) with this operand.
        func equals(_ type: Int32, _ span: UnsafeRawBufferPointer) -> Bool {
            switch self {
            case .null:
                return false
            case .bool(let b):
                guard type == Int32(SJ_BOOL), let first = span.first else { return false }
                return (first == UInt8(ascii: "t")) == b
            case .int, .double:
                guard type == Int32(SJ_NUMBER) else { return false }
                return order(type, span) == 0
            case .string(let s):
                guard type == Int32(SJ_STRING) else { return false }
                return s.withUnsafeBufferPointer { sb in
                    sj_string_eq(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count,
                                 sb.baseAddress, sb.count) != 0
                }
            case .composite(let c):
                guard type == Int32(SJ_ARRAY) || type == Int32(SJ_OBJECT) else { return false }
                guard let parsed = JSONValue.parseSpan(span) else { return false }
                return parsed == c
            }
        }

        /// Sign of (event value - operand) for comparable types; nil if not comparable.
        func order(_ type: Int32, _ span: UnsafeRawBufferPointer) -> Int? {
            switch self {
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
            case .string(let s):
                guard type == Int32(SJ_STRING) else { return nil }
                return s.withUnsafeBufferPointer { sb in
                    Int(sj_string_cmp(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count,
                                      sb.baseAddress, sb.count))
                }
            case .null, .bool, .composite:
                return nil
            }
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
