import CSluiceJSON
import SluiceCore
import SluiceSpec

/// The declarative reducers of an `aggregate`, compiled: the paths they read are found in one
/// pass over each event's bytes; values are kept as numbers or raw JSON bytes (never Lua).
struct Reducers: Sendable {
    let specs: [ReducerSpec]
    let paths: JSONPathSet
    let slots: [Int]

    init(_ specs: [ReducerSpec]) {
        self.specs = specs
        let paths = specs.map { $0.path ?? [] }
        self.paths = JSONPathSet(paths)
        self.slots = self.paths.slots
    }

    /// The running value of one reducer.
    enum Accumulator: Sendable {
        case count(Int64)
        case sum(int: Int64, double: Double, isDouble: Bool)
        case extreme(value: Double, raw: [UInt8]?)
        case avg(sum: Double, n: Int64)
        case raw([UInt8]?)
        /// Values hashed once (FNV, as state keys): no SipHash pass over the bytes per insert.
        case distinct(Set<StateKey>)
        case list([[UInt8]])

        /// Inserts in place: the set is moved out first, so it is never copied (copy-on-write).
        mutating func insertDistinct(_ v: StateKey) -> Bool {
            guard case .distinct(var set) = self else { return false }
            self = .count(0)
            let inserted = set.insert(v).inserted
            self = .distinct(set)
            return inserted
        }

        mutating func formUnion(_ other: Set<StateKey>) {
            guard case .distinct(var set) = self else { return }
            self = .count(0)
            set.formUnion(other)
            self = .distinct(set)
        }

        mutating func append(contentsOf other: [[UInt8]]) {
            guard case .list(var items) = self else { return }
            self = .count(0)
            items.append(contentsOf: other)
            self = .list(items)
        }

        mutating func append(_ v: [UInt8]) {
            guard case .list(var items) = self else { return }
            self = .count(0)
            items.append(v)
            self = .list(items)
        }
    }

    func empty() -> [Accumulator] {
        specs.map { s in
            switch s.op {
            case .count: return .count(0)
            case .sum: return .sum(int: 0, double: 0, isDouble: false)
            case .min: return .extreme(value: .infinity, raw: nil)
            case .max: return .extreme(value: -.infinity, raw: nil)
            case .avg: return .avg(sum: 0, n: 0)
            case .first, .last: return .raw(nil)
            case .countDistinct: return .distinct([])
            case .collect: return .list([])
            }
        }
    }

    /// Adds one event; returns the bytes the accumulators grew by (for the state budget).
    /// Values are read in place; only those kept (first, last, extremes, distinct, collect) are copied.
    func add(_ bytes: ArraySlice<UInt8>, to acc: inout [Accumulator]) -> Int {
        var grown = 0
        bytes.withUnsafeBytes { raw in
            paths.find(in: raw) { values in
                for (i, spec) in specs.enumerated() {
                    if spec.op == .count {
                        if case .count(let n) = acc[i] { acc[i] = .count(n + 1) }
                        continue
                    }
                    let slot = slots[i]
                    guard slot >= 0 else { continue }
                    let v = values[slot]
                    let type = Int(v.type)
                    if type == SJ_MISSING || type == SJ_NULL || v.off + v.len > raw.count { continue }
                    let span = UnsafeRawBufferPointer(rebasing: raw[v.off..<(v.off + v.len)])
                    // Switch on the operation only: a tuple with acc[i] would hold a second
                    // reference to a set or list and force a copy on every insert.
                    switch spec.op {
                    case .sum:
                        guard type == SJ_NUMBER, case .sum(let si, let sd, let isD) = acc[i] else { continue }
                        var iv: Int64 = 0
                        var dv: Double = 0
                        let kind = sj_parse_number(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count, &iv, &dv)
                        if kind == Int32(SJ_NUM_INT), !isD {
                            let (sum, o) = si.addingReportingOverflow(iv)
                            acc[i] = o ? .sum(int: 0, double: Double(si) + dv, isDouble: true) : .sum(int: sum, double: sd + dv, isDouble: false)
                        } else if kind != Int32(SJ_NUM_INVALID) {
                            acc[i] = .sum(int: si, double: (isD ? sd : Double(si)) + dv, isDouble: true)
                        }
                    case .min, .max:
                        guard type == SJ_NUMBER, let d = Self.number(span), case .extreme(let best, let r) = acc[i] else { continue }
                        let better = spec.op == .min ? d < best : d > best
                        if better || r == nil {
                            grown += span.count - (r?.count ?? 0)
                            acc[i] = .extreme(value: d, raw: Array(span))
                        }
                    case .avg:
                        guard type == SJ_NUMBER, let d = Self.number(span), case .avg(let s, let n) = acc[i] else { continue }
                        acc[i] = .avg(sum: s + d, n: n + 1)
                    case .first:
                        if case .raw(nil) = acc[i] { acc[i] = .raw(Array(span)); grown += span.count }
                    case .last:
                        if case .raw(let r) = acc[i] { grown += span.count - (r?.count ?? 0) }
                        acc[i] = .raw(Array(span))
                    case .countDistinct:
                        if acc[i].insertDistinct(StateKey(Self.canonical(span, type: type))) { grown += span.count + 16 }
                    case .collect:
                        acc[i].append(Array(span))
                        grown += span.count + 16
                    case .count:
                        continue
                    }
                }
            }
        }
        return grown
    }

    /// Folds `b` (a later partial: events that came after those of `a`) into `a`.
    func merge(_ b: [Accumulator], into a: inout [Accumulator]) {
        for i in a.indices where i < b.count {
            switch specs[i].op {
            case .count:
                if case .count(let x) = a[i], case .count(let y) = b[i] { a[i] = .count(x + y) }
            case .sum:
                if case .sum(let ai, let ad, let aD) = a[i], case .sum(let bi, let bd, let bD) = b[i] {
                    let (s, o) = ai.addingReportingOverflow(bi)
                    let isD = aD || bD || o
                    a[i] = .sum(int: isD ? 0 : s, double: (aD ? ad : Double(ai)) + (bD ? bd : Double(bi)), isDouble: isD)
                }
            case .min, .max:
                if case .extreme(let av, let ar) = a[i], case .extreme(let bv, let br) = b[i], br != nil,
                   ar == nil || (specs[i].op == .min ? bv < av : bv > av) {
                    a[i] = .extreme(value: bv, raw: br)
                }
            case .avg:
                if case .avg(let s1, let n1) = a[i], case .avg(let s2, let n2) = b[i] { a[i] = .avg(sum: s1 + s2, n: n1 + n2) }
            case .first:
                if case .raw(nil) = a[i], case .raw(let br?) = b[i] { a[i] = .raw(br) }
            case .last:
                if case .raw(let br?) = b[i] { a[i] = .raw(br) }
            case .countDistinct:
                if case .distinct(let y) = b[i] { a[i].formUnion(y) }
            case .collect:
                if case .list(let y) = b[i] { a[i].append(contentsOf: y) }
            }
        }
    }

    /// Appends `,"field":value` for every reducer.
    func write(_ acc: [Accumulator], to out: inout [UInt8]) {
        for (i, spec) in specs.enumerated() {
            out.append(UInt8(ascii: ","))
            JSONWriter.appendString(spec.output, to: &out)
            out.append(UInt8(ascii: ":"))
            switch acc[i] {
            case .count(let n): out.append(contentsOf: Array(String(n).utf8))
            case .sum(let si, let sd, let isD): out.append(contentsOf: Array((isD ? Self.format(sd) : String(si)).utf8))
            case .extreme(_, let r): out.append(contentsOf: r ?? Array("null".utf8))
            case .avg(let s, let n): out.append(contentsOf: Array((n == 0 ? "null" : Self.format(s / Double(n))).utf8))
            case .raw(let r): out.append(contentsOf: r ?? Array("null".utf8))
            case .distinct(let set): out.append(contentsOf: Array(String(set.count).utf8))
            case .list(let items):
                out.append(UInt8(ascii: "["))
                for (k, item) in items.enumerated() {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    out.append(contentsOf: item)
                }
                out.append(UInt8(ascii: "]"))
            }
        }
    }

    private static func number(_ span: UnsafeRawBufferPointer) -> Double? {
        var iv: Int64 = 0
        var dv: Double = 0
        let kind = sj_parse_number(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count, &iv, &dv)
        return kind == Int32(SJ_NUM_INVALID) ? nil : dv
    }

    /// Strings compare by their decoded text (so "a" and "\u0061" are one value), tagged apart from numbers.
    private static func canonical(_ span: UnsafeRawBufferPointer, type: Int) -> [UInt8] {
        guard type == SJ_STRING, span.count >= 2 else { return Array(span) }
        guard span.contains(UInt8(ascii: "\\")) else {
            var out: [UInt8] = [1]
            out.append(contentsOf: span[1..<(span.count - 1)])
            return out
        }
        var out = [UInt8](repeating: 0, count: span.count)
        let n = out.withUnsafeMutableBufferPointer {
            sj_string_decode(span.baseAddress?.assumingMemoryBound(to: UInt8.self), span.count, $0.baseAddress, $0.count)
        }
        guard n <= out.count else { return Array(span) }
        return [1] + out[..<n]
    }

    static func format(_ d: Double) -> String {
        if d.isFinite, d == d.rounded(), abs(d) < 1e15 { return String(format: "%.1f", d) }
        return d.isFinite ? "\(d)" : "null"
    }
}

import Foundation
