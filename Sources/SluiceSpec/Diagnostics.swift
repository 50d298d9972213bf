/// One problem found in a spec, printed as `file:line:col: message`.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(location: SourceLocation, message: String) {
        self.location = location; self.message = message
    }

    /// `file:line:col: message`; a problem with the file as a whole (line 0) prints as `file: message`.
    public var description: String {
        if location.line <= 0 { return "\(location.file): \(message)" }
        return "\(location): \(message)"
    }
}

/// Every problem found while loading a spec, in file order.
public struct SpecErrors: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    /// What did load despite the problems (the components that parsed), so that problems found
    /// later — a Lua reference that does not resolve, say — are reported in the same run.
    public var partial: PipelineSpec?
    public init(diagnostics: [Diagnostic], partial: PipelineSpec? = nil) { self.diagnostics = diagnostics; self.partial = partial }
    /// One diagnostic per line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Collects diagnostics while loading; sorted by position when done.
struct DiagnosticSink {
    private(set) var items: [Diagnostic] = []
    /// Positions of values already reported (e.g. an unset `${VAR}`): later problems there are not reported again.
    private(set) var muted: Set<SourceLocation> = []

    mutating func error(_ location: SourceLocation, _ message: String) {
        if muted.contains(location) { return }
        items.append(Diagnostic(location: location, message: message))
    }

    /// Stops reporting problems at `location` (the start of a value whose own problem was reported).
    mutating func mute(_ location: SourceLocation) { muted.insert(location) }

    mutating func append(contentsOf other: [Diagnostic]) { items.append(contentsOf: other) }

    var isEmpty: Bool { items.isEmpty }

    /// Stable sort by line then column; identical diagnostics are reported once.
    var sorted: [Diagnostic] {
        var seen = Set<Diagnostic>()
        let unique = items.filter { seen.insert($0).inserted }
        return unique.enumerated().sorted { a, b in
            let (x, y) = (a.element.location, b.element.location)
            if x.line != y.line { return x.line < y.line }
            if x.column != y.column { return x.column < y.column }
            return a.offset < b.offset
        }.map(\.element)
    }
}

/// "Did you mean" suggestions by edit distance.
enum Suggest {
    /// The closest candidate within a small edit distance, or nil.
    static func closest(to word: String, among candidates: [String]) -> String? {
        let w = Array(word.lowercased())
        guard !w.isEmpty, w.count <= 64 else { return nil }
        var best: (String, Int)?
        for c in candidates where c != word {
            let cc = Array(c.lowercased())
            guard cc.count <= 64 else { continue }
            let d = distance(w, cc)
            let limit = max(1, min(2, max(w.count, cc.count) / 3))
            if d <= limit, best == nil || d < best!.1 { best = (c, d) }
        }
        return best?.0
    }

    /// " (did you mean 'x'?)" or "".
    static func hint(for word: String, among candidates: [String]) -> String {
        guard let s = closest(to: word, among: candidates) else { return "" }
        return " (did you mean '\(s)'?)"
    }

    /// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev2 = [Int](repeating: 0, count: b.count + 1)
        var prev = Array(0...b.count)
        var cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { v = min(v, prev2[j - 2] + 1) }
                cur[j] = v
            }
            prev2 = prev; prev = cur
        }
        return prev[b.count]
    }

    /// "a, b or c"
    static func list(_ items: [String]) -> String {
        if items.count <= 1 { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " or " + items[items.count - 1]
    }
}
