import SluiceCore

/// Typing of YAML scalars and parsing of spec value syntaxes (sizes, rates, durations).
///
/// Plain scalars follow the YAML 1.2 core schema (also valid YAML 1.1): `~`/`null`/empty -> null,
/// `true`/`false` (any of `true`, `True`, `TRUE`) -> bool, `7`, `-3`, `1_000`, `0x1F`, `0o17` -> integer,
/// `1.5`, `1e3`, `.inf`, `.nan` -> double; everything else (including YAML 1.1's `yes`/`no`/`on`/`off`)
/// is a string. Quoted and block scalars are always strings.
public enum YAMLScalars {
    public static func isNullText(_ s: String) -> Bool {
        s.isEmpty || s == "~" || s == "null" || s == "Null" || s == "NULL"
    }

    public static func parseBool(_ s: String) -> Bool? {
        switch s {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    /// Integer syntax; returns nil if `s` is not an integer. Decimal integers too large for 64 bits return nil
    /// with `overflow` set (callers may then treat them as doubles).
    public static func parseInt(_ s: String, overflow: UnsafeMutablePointer<Bool>? = nil) -> Int64? {
        var chars = Substring(s)
        var negative = false
        if let f = chars.first, f == "-" || f == "+" { negative = f == "-"; chars = chars.dropFirst() }
        if chars.hasPrefix("0x") || chars.hasPrefix("0o") {
            let radix = chars.hasPrefix("0x") ? 16 : 8
            let digits = chars.dropFirst(2).filter { $0 != "_" }
            guard !digits.isEmpty, let v = Int64(String(digits), radix: radix) else { return nil }
            return negative ? -v : v
        }
        guard let first = chars.first, first.isASCII, first.isNumber,
              let last = chars.last, last.isASCII, last.isNumber,
              chars.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "_" }) else { return nil }
        let digits = String(chars.filter { $0 != "_" })
        guard let v = Int64((negative ? "-" : "") + digits) else {
            overflow?.pointee = true
            return nil
        }
        return v
    }

    public static func parseFloat(_ s: String) -> Double? {
        var body = Substring(s)
        var sign = 1.0
        if let f = body.first, f == "-" || f == "+" { sign = f == "-" ? -1 : 1; body = body.dropFirst() }
        switch body {
        case ".inf", ".Inf", ".INF": return sign * Double.infinity
        case ".nan", ".NaN", ".NAN": return String(body) == s ? Double.nan : nil
        default: break
        }
        // [0-9_]* ( . [0-9_]* )? ( [eE] [-+]? [0-9]+ )?  with at least one digit and a '.' or an exponent.
        var i = body.startIndex
        var mantissaDigits = 0
        var sawDot = false, sawExp = false
        while i < body.endIndex, body[i].isASCII, body[i].isNumber || body[i] == "_" {
            if body[i] != "_" { mantissaDigits += 1 }
            i = body.index(after: i)
        }
        if i < body.endIndex, body[i] == "." {
            sawDot = true
            i = body.index(after: i)
            while i < body.endIndex, body[i].isASCII, body[i].isNumber || body[i] == "_" {
                if body[i] != "_" { mantissaDigits += 1 }
                i = body.index(after: i)
            }
        }
        guard mantissaDigits > 0 else { return nil }
        if i < body.endIndex, body[i] == "e" || body[i] == "E" {
            sawExp = true
            i = body.index(after: i)
            if i < body.endIndex, body[i] == "-" || body[i] == "+" { i = body.index(after: i) }
            var expDigits = 0
            while i < body.endIndex, body[i].isASCII, body[i].isNumber { expDigits += 1; i = body.index(after: i) }
            guard expDigits > 0 else { return nil }
        }
        guard i == body.endIndex, sawDot || sawExp else { return nil }
        var text = String(body.filter { $0 != "_" })
        if text.hasPrefix(".") { text = "0" + text }
        if text.hasSuffix(".") { text += "0" }
        text = text.replacingOccurrences(of: ".e", with: ".0e").replacingOccurrences(of: ".E", with: ".0E")
        guard let v = Double(text) else { return nil }
        return sign * v
    }

    /// The JSON value of a plain, untagged scalar.
    public static func resolvePlain(_ s: String) -> JSONValue {
        if isNullText(s) { return .null }
        if let b = parseBool(s) { return .bool(b) }
        var overflow = false
        if let i = parseInt(s, overflow: &overflow) { return .int(i) }
        if overflow, let d = Double(s.filter { $0 != "_" }) { return .double(d) }
        if let d = parseFloat(s) { return .double(d) }
        return .string(s)
    }

    /// Size with an optional unit: `1048576`, `512KiB`, `64MiB`, `1GiB`, `10MB` (KB/MB/GB are powers of 1000).
    public static func parseSize(_ s: String) -> Int? {
        let units: [(String, Double)] = [("kib", 1024), ("mib", 1_048_576), ("gib", 1_073_741_824),
                                         ("kb", 1000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("b", 1)]
        let lower = s.lowercased().trimmingSpaces
        var number = Substring(lower)
        var factor = 1.0
        for (u, f) in units where lower.hasSuffix(u) {
            number = lower.dropLast(u.count)
            factor = f
            break
        }
        let n = String(number).trimmingSpaces
        guard !n.isEmpty, n.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "." }),
              n.filter({ $0 == "." }).count <= 1, n.first != ".", n.last != ".",
              let v = Double(n) else { return nil }
        let bytes = v * factor
        guard bytes >= 0, bytes < 9.0e18, bytes == bytes.rounded(.down) else { return nil }
        return Int(bytes)
    }

    /// Duration in milliseconds: `250ms`, `10s`, `5m`, `1h`, `1d`, `1.5s`.
    public static func parseDurationMillis(_ s: String) -> Int64? {
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        let t = s.trimmingSpaces
        for (u, f) in units where t.hasSuffix(u) {
            let n = String(t.dropLast(u.count))
            guard !n.isEmpty, n.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "." }),
                  n.first != ".", n.last != ".", let v = Double(n) else { return nil }
            let ms = v * f
            guard ms < 9.0e18, ms == ms.rounded(.down) else { return nil }
            return Int64(ms)
        }
        return nil
    }

    /// Rate in events per second: `100/s`, `6000/m` (or `/min`), `10/h`, or a bare number (per second). Must be > 0.
    public static func parseRate(_ s: String) -> Double? {
        let t = s.trimmingSpaces
        var number = t
        var per = 1.0
        if let slash = t.firstIndex(of: "/") {
            number = String(t[..<slash]).trimmingSpaces
            switch t[t.index(after: slash)...].trimmingSpaces {
            case "s", "sec": per = 1
            case "m", "min": per = 60
            case "h": per = 3600
            default: return nil
            }
        }
        guard !number.isEmpty, number.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "." }),
              number.first != ".", number.last != ".", let v = Double(number), v > 0, v.isFinite else { return nil }
        return v / per
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Substring.Index>? {
        guard !target.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) {
                return i..<index(i, offsetBy: target.count)
            }
            i = index(after: i)
        }
        return nil
    }
}
