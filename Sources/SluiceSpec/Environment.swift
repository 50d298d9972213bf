/// `${VAR}` / `${VAR:-default}` substitution in scalar values (never in keys).
///
/// - `${VAR}`: the value of VAR; an unset VAR is an error located at the `${`.
/// - `${VAR:-default}`: the default when VAR is unset or empty. The default runs to the first `}`.
/// - `$${` writes a literal `${`.
/// A plain scalar stays plain after substitution, so `capacity: ${CAP:-100}` is the integer 100.
public enum EnvSubstitution {
    /// Substitutes in `text`; problems are reported with the character offset of their `${`.
    public static func substitute(_ text: String, environment: [String: String],
                                  onError: (_ characterOffset: Int, _ message: String) -> Void) -> String {
        guard text.contains("${") else { return text }
        let chars = Array(text)
        var out = ""
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "$", i + 2 < chars.count, chars[i + 1] == "$", chars[i + 2] == "{" {
                out += "${"; i += 3; continue
            }
            guard c == "$", i + 1 < chars.count, chars[i + 1] == "{" else { out.append(c); i += 1; continue }
            guard let close = chars[(i + 2)...].firstIndex(of: "}") else {
                onError(i, "unterminated '${' (expected '${NAME}' or '${NAME:-default}')")
                out += String(chars[i...])
                break
            }
            let inner = String(chars[(i + 2)..<close])
            var name = inner
            var fallback: String?
            if let r = inner.range(of: ":-") {
                name = String(inner[..<r.lowerBound])
                fallback = String(inner[r.upperBound...])
            }
            if !isValidName(name) {
                onError(i, "invalid environment variable reference '${\(inner)}'")
                out += "${\(inner)}"
            } else if let v = environment[name], !(v.isEmpty && fallback != nil) {
                out += v
            } else if let fallback {
                out += fallback
            } else {
                onError(i, "environment variable '\(name)' is not set and has no default")
                out += "${\(inner)}"  // kept as written so later checks do not report a second problem
            }
            i = close + 1
        }
        return out
    }

    static func isValidName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f == "_" || (f.isASCII && f.properties.isAlphabetic) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    /// Substitutes in every scalar value of the tree.
    static func apply(_ node: YAMLNode, environment: [String: String], diagnostics: inout DiagnosticSink) -> YAMLNode {
        switch node.kind {
        case .scalar(let text, let style):
            guard text.contains("${") else { return node }
            var errors: [(Int, String)] = []
            let replaced = substitute(text, environment: environment) { errors.append(($0, $1)) }
            for (offset, message) in errors {
                diagnostics.error(locate(offset, in: node, text: text), message)
            }
            // The value still holds the `${...}` as written; checks of its type would only repeat the problem.
            if !errors.isEmpty { diagnostics.mute(node.location) }
            var copy = node
            copy.kind = .scalar(replaced, style)
            return copy
        case .sequence(let items):
            var copy = node
            copy.kind = .sequence(items.map { apply($0, environment: environment, diagnostics: &diagnostics) })
            return copy
        case .mapping(let pairs):
            var copy = node
            copy.kind = .mapping(pairs.map {
                YAMLPair(key: $0.key, value: apply($0.value, environment: environment, diagnostics: &diagnostics))
            })
            return copy
        }
    }

    /// Column of a character offset inside a single-line scalar whose source text maps 1:1 to its value;
    /// otherwise the scalar's own position.
    static func locate(_ offset: Int, in node: YAMLNode, text: String) -> SourceLocation {
        guard case .scalar(_, let style) = node.kind, node.endLine == node.location.line, !text.contains("\n") else {
            return node.location
        }
        let before = text.prefix(offset)
        var loc = node.location
        switch style {
        case .plain: loc.column += offset
        case .singleQuoted where !before.contains("'"): loc.column += 1 + offset
        case .doubleQuoted where !before.contains("\\") && !before.contains("\""): loc.column += 1 + offset
        default: break
        }
        return loc
    }
}
