/// Character scans of one YAML line for the reader's better error messages (long keys, unquoted
/// `${VAR}`): the characters outside quotes and before a comment.
enum YAMLLineScan {
    /// Calls `visit` with the index and character of each unquoted character of `chars` up to a
    /// comment (`#` at the start or after a space); `visit` returns false to stop.
    static func unquoted(_ chars: [Unicode.Scalar], _ visit: (Int, Unicode.Scalar) -> Bool) {
        var quote: Unicode.Scalar?
        for (i, c) in chars.enumerated() {
            if let q = quote {
                if c == q { quote = nil }
                continue
            }
            if c == "'" || c == "\"" { quote = c; continue }
            if c == "#" && (i == 0 || chars[i - 1] == " ") { return }
            if !visit(i, c) { return }
        }
    }
}
