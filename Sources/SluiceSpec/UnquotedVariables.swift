/// Finds `${VAR}` written unquoted inside a flow collection (`{ path: ${OUT} }`), where YAML reads
/// its braces as flow syntax and libyaml fails with a message that does not mention the variable.
enum UnquotedVariables {
    /// The first unquoted `${...}` on `lines` (1-based) that sits inside a `{...}` or `[...]`
    /// opened on those lines: its 1-based line, column (in characters) and text.
    static func find(in bytes: [UInt8], lines: ClosedRange<Int>) -> (line: Int, column: Int, text: String)? {
        let text = String(decoding: bytes, as: UTF8.self)
        var depth = 0
        for (n, content) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where lines.contains(n + 1) {
            let chars = Array(content.unicodeScalars)
            var found: (line: Int, column: Int, text: String)?
            YAMLLineScan.unquoted(chars) { i, c in
                switch c {
                case "{", "[": depth += 1
                case "}", "]": depth = max(0, depth - 1)
                case "$" where depth > 0 && i + 1 < chars.count && chars[i + 1] == "{":
                    var end = i + 2
                    while end < chars.count, chars[end] != "}" { end += 1 }
                    found = (n + 1, i + 1, String(String.UnicodeScalarView(chars[i..<min(end + 1, chars.count)])))
                    return false
                default: break
                }
                return true
            }
            if let found { return found }
        }
        return nil
    }
}
