/// Which fields of its event a Lua function can read, found from its source text, so that only
/// those are decoded into its table (the rest of the event is validated, never built in Lua).
///
/// The answer is conservative: a list of field paths only when every use of the event parameter
/// is a read of a named field chain (`event.a`, `event.client.os`, `event.tags[1]`, `event.s:lower()`);
/// `nil` (decode everything) as soon as the event itself could escape or change: used bare
/// (`return event`, `f(event)`, `pairs(event)`, `local e = event`), indexed by an expression
/// (`event[k]`), assigned to (`event.x = 1`), in a list that may be assigned to at statement
/// level (`event.x, y = ...`), shadowed, used inside a nested function (a closure may keep it),
/// or reached through `...`. A chain's value is decoded
/// whole, so whatever the function does with `event.client` sees all of it.
public enum LuaFieldAccess {
    /// Field paths read by the function whose text is at `firstLine...lastLine` of `source`
    /// (lines as Lua's `debug.getinfo` counts them), or nil when any use is not a plain read.
    /// No path is a prefix of another.
    public static func fields(source: String, firstLine: Int, lastLine: Int) -> [[String]]? {
        let tokens = LuaTokens.scan(source)
        // The function Lua says starts on `firstLine`: there must be exactly one there.
        let starts = tokens.indices.filter { tokens[$0].line == firstLine && tokens[$0].kind == .name && tokens[$0].text == "function" }
        guard starts.count == 1, let start = starts.first else { return nil }
        return analyse(tokens, from: start, lastLine: lastLine)
    }

    private static let openers: Set<String> = ["function", "if", "do", "repeat"]

    private static func analyse(_ t: [LuaTokens.Token], from start: Int, lastLine: Int) -> [[String]]? {
        // function [Name {'.' Name} [':' Name]] '(' params ')'
        var i = start + 1
        var method = false
        while i < t.count, t[i].text != "(" {
            if t[i].text == ":" { method = true }
            i += 1
        }
        guard i < t.count else { return nil }
        var params: [String] = []
        i += 1
        while i < t.count, t[i].text != ")" {
            if t[i].text == "..." { return nil }
            if t[i].kind == .name { params.append(t[i].text) }
            i += 1
        }
        guard i < t.count else { return nil }
        let param = method ? "self" : params.first
        i += 1
        // The body, up to the `end` that closes the function.
        var blocks = 1
        var brackets: [String] = []
        // Each open function (this one and nested ones): the block depth just inside it and the
        // bracket depth at which its statements stand.
        var functions: [(blocks: Int, brackets: Int)] = [(1, 0)]
        var paths: [[String]] = []
        while i < t.count {
            let tok = t[i]
            if tok.kind == .name && openers.contains(tok.text) {
                // `while ... do` and `for ... do` open at `do`; `if` at `if`.
                blocks += 1
                if tok.text == "function" { functions.append((blocks, brackets.count)) }
            } else if tok.kind == .name && (tok.text == "end" || tok.text == "until") {
                if functions.count > 1, functions.last?.blocks == blocks { functions.removeLast() }
                blocks -= 1
                if blocks == 0 {
                    guard tok.line == lastLine else { return nil }
                    return minimal(paths)
                }
            } else if tok.text == "(" || tok.text == "{" || tok.text == "[" {
                brackets.append(tok.text)
            } else if tok.text == ")" || tok.text == "}" || tok.text == "]" {
                if !brackets.isEmpty { brackets.removeLast() }
            } else if tok.text == "..." {
                return nil
            } else if let param, tok.kind == .name, tok.text == param {
                let previous = i > 0 ? t[i - 1].text : ""
                if previous == "." || previous == ":" || previous == "::" || previous == "goto" {
                    i += 1
                    continue   // a field or label of that name, not the parameter
                }
                // A key in a table constructor: `{ event = ... }`.
                if brackets.last == "{", previous == "{" || previous == "," || previous == ";",
                   i + 1 < t.count, t[i + 1].text == "=" {
                    i += 1
                    continue
                }
                // Inside a nested function the event is captured by a closure that may outlive
                // the call (stored in an upvalue, a coroutine), and the decoded tables are kept for
                // the next event: only a whole decode (fresh tables) is safe.
                if functions.count > 1 { return nil }
                var path: [String] = []
                var j = i + 1
                while j + 1 < t.count, t[j].text == ".", t[j + 1].kind == .name {
                    path.append(t[j + 1].text)
                    j += 2
                }
                guard !path.isEmpty, j < t.count else { return nil }
                let next = t[j].text
                if next == "=" { return nil }
                if next == "," && brackets.count == functions.last?.brackets { return nil }
                paths.append(path)
                i = j
                continue
            }
            i += 1
        }
        return nil
    }

    /// Drops duplicates and every path that extends another (its prefix is decoded whole).
    private static func minimal(_ paths: [[String]]) -> [[String]] {
        let sorted = Array(Set(paths)).sorted { $0.count != $1.count ? $0.count < $1.count : $0.lexicographicallyPrecedes($1) }
        var kept: [[String]] = []
        for p in sorted where !kept.contains(where: { p.starts(with: $0) }) { kept.append(p) }
        return kept
    }
}

/// Lua 5.4 source as tokens (names and keywords, symbols, and placeholders for strings and
/// numbers), with comments and long brackets skipped; enough to see how names are used.
enum LuaTokens {
    enum Kind { case name, symbol, literal }

    struct Token {
        var kind: Kind
        var text: String
        var line: Int
    }

    static func scan(_ source: String) -> [Token] {
        let b = Array(source.utf8)
        var out: [Token] = []
        var i = 0
        var line = 1
        func longBracketLevel(at k: Int) -> Int? {
            // `[` `=`* `[` -> the number of `=`
            guard k < b.count, b[k] == UInt8(ascii: "[") else { return nil }
            var n = k + 1
            while n < b.count, b[n] == UInt8(ascii: "=") { n += 1 }
            return n < b.count && b[n] == UInt8(ascii: "[") ? n - k - 1 : nil
        }
        func skipLong(from k: Int, level: Int) -> Int {
            var n = k + level + 2
            while n < b.count {
                if b[n] == UInt8(ascii: "\n") { line += 1 }
                if b[n] == UInt8(ascii: "]") {
                    var m = n + 1
                    while m < b.count, b[m] == UInt8(ascii: "="), m - n - 1 < level { m += 1 }
                    if m - n - 1 == level, m < b.count, b[m] == UInt8(ascii: "]") { return m + 1 }
                }
                n += 1
            }
            return n
        }
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\n") { line += 1; i += 1; continue }
            if c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0B || c == 0x0C { i += 1; continue }
            if c == UInt8(ascii: "-"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "-") {
                if let level = longBracketLevel(at: i + 2) {
                    i = skipLong(from: i + 2, level: level)
                } else {
                    while i < b.count, b[i] != UInt8(ascii: "\n") { i += 1 }
                }
                continue
            }
            if let level = longBracketLevel(at: i) {
                let at = line
                i = skipLong(from: i, level: level)
                out.append(Token(kind: .literal, text: "<string>", line: at))
                continue
            }
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                let at = line
                var n = i + 1
                while n < b.count, b[n] != c {
                    if b[n] == UInt8(ascii: "\\") { n += 1 }
                    if n < b.count, b[n] == UInt8(ascii: "\n") { line += 1 }
                    n += 1
                }
                i = n + 1
                out.append(Token(kind: .literal, text: "<string>", line: at))
                continue
            }
            if isNameStart(c) {
                var n = i + 1
                while n < b.count, isNameStart(b[n]) || isDigit(b[n]) { n += 1 }
                out.append(Token(kind: .name, text: String(decoding: b[i..<n], as: UTF8.self), line: line))
                i = n
                continue
            }
            if isDigit(c) || (c == UInt8(ascii: ".") && i + 1 < b.count && isDigit(b[i + 1])) {
                var n = i + 1
                while n < b.count {
                    let d = b[n]
                    if isDigit(d) || isNameStart(d) || d == UInt8(ascii: ".") { n += 1; continue }
                    if (d == UInt8(ascii: "+") || d == UInt8(ascii: "-")),
                       "eEpP".utf8.contains(b[n - 1]) { n += 1; continue }
                    break
                }
                out.append(Token(kind: .literal, text: "<number>", line: line))
                i = n
                continue
            }
            // Symbols, longest first.
            var length = 1
            for s in ["...", "..", "==", "~=", "<=", ">=", "//", "::", "<<", ">>"] where matches(b, i, s) {
                length = s.utf8.count
                break
            }
            out.append(Token(kind: .symbol, text: String(decoding: b[i..<(i + length)], as: UTF8.self), line: line))
            i += length
        }
        return out
    }

    private static func matches(_ b: [UInt8], _ i: Int, _ s: String) -> Bool {
        let u = Array(s.utf8)
        return i + u.count <= b.count && Array(b[i..<(i + u.count)]) == u
    }

    private static func isNameStart(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || c == UInt8(ascii: "_")
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
}
