/// Finds implicit mapping keys longer than YAML allows (1,024 characters), so that the reader can say so instead
/// of passing on libyaml's "could not find expected ':'".
enum LongKeys {
    /// The most characters an implicit (simple) YAML key may have.
    static let limit = 1024

    /// The 1-based column and the length (in characters) of the first key longer than `limit` on `line` (1-based).
    static func find(in bytes: [UInt8], line: Int) -> (column: Int, length: Int)? {
        var current = 1
        var start = 0
        while current < line, let nl = bytes[start...].firstIndex(of: 0x0A) {
            start = nl + 1
            current += 1
        }
        guard current == line, start <= bytes.count else { return nil }
        let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
        let chars = Array(String(decoding: bytes[start..<end], as: UTF8.self).unicodeScalars)
        guard chars.count > limit else { return nil }
        var keyStart = 0
        var found: (column: Int, length: Int)?
        YAMLLineScan.unquoted(chars) { i, c in
            switch c {
            case "{", "[", ",", "}", "]":
                keyStart = i + 1
            case ":" where i + 1 == chars.count || [" ", "\t", ",", "}", "]"].contains(chars[i + 1]):
                var s = keyStart
                while s < i, chars[s] == " " || chars[s] == "\t" || chars[s] == "?" ||
                    (chars[s] == "-" && s + 1 < i && chars[s + 1] == " ") { s += 1 }
                if i - s > limit { found = (s + 1, i - s); return false }
                keyStart = i + 1
            default:
                break
            }
            return true
        }
        if let found { return found }
        return nil
    }
}
