/// Where the inline expressions an engine compiled come from, so Lua's messages about them name the
/// spec's own location instead of a chunk name and a line of the wrapper the user never wrote.
///
/// Each expression is compiled as the chunk `sluice-expr-K` (short, so Lua never truncates it), wrapped
/// as `return function(event, ctx) return (SOURCE\n) end`. A message `sluice-expr-K:N: ...` then reads
/// `LABEL: ...` (a one-line expression), `LABEL (line N of the expression): ...`, or, for the wrapper's
/// closing line, `LABEL: ... at the end of the expression`.
struct ExpressionSites {
    private struct Site {
        var label: String
        /// Lines of the user's text (a trailing newline does not start one).
        var lines: Int
        /// The wrapper's closing `) end` line.
        var closing: Int
    }

    private var sites: [String: Site] = [:]
    private static let prefix = "sluice-expr-"

    /// Registers an expression; returns the chunk name to compile it under.
    mutating func add(source: String, label: String) -> String {
        let chunk = Self.prefix + String(sites.count + 1)
        let newlines = source.utf8.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
        let userLines = max(1, newlines + 1 - (source.utf8.last == 0x0A ? 1 : 0))
        sites[chunk] = Site(label: label, lines: userLines, closing: newlines + 2)
        return chunk
    }

    /// `text` with every `sluice-expr-K:N` replaced by its expression's label (and line).
    func relabel(_ text: String) -> String {
        guard !sites.isEmpty, text.contains(Self.prefix) else { return text }
        var out = ""
        var rest = Substring(text)
        var atEnd = false
        while let r = rest.range(of: Self.prefix) {
            out += rest[..<r.lowerBound]
            var i = r.upperBound
            while i < rest.endIndex, rest[i].isASCII, rest[i].isNumber { i = rest.index(after: i) }
            let chunk = String(rest[r.lowerBound..<i])
            guard let site = sites[chunk] else { out += chunk; rest = rest[i...]; continue }
            var line: Int?
            if i < rest.endIndex, rest[i] == ":" {
                var j = rest.index(after: i)
                while j < rest.endIndex, rest[j].isASCII, rest[j].isNumber { j = rest.index(after: j) }
                if let n = Int(rest[rest.index(after: i)..<j]) { line = n; i = j }
            }
            out += site.label
            if let line {
                if line == site.closing { atEnd = true }
                else if site.lines > 1, line >= 1, line <= site.lines { out += " (line \(line) of the expression)" }
            }
            rest = rest[i...]
        }
        out += rest
        if atEnd { out = out.replacingOccurrences(of: " near ')'", with: " at the end of the expression") }
        return out
    }
}
