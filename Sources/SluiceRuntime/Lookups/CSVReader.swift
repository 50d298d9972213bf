/// A small RFC 4180 CSV reader: comma-separated, `"` quotes fields (`""` is a quote inside one),
/// quoted fields may hold commas and newlines, LF or CRLF line ends, a UTF-8 BOM is skipped.
struct CSVReader {
    /// One record with the 1-based line it starts on.
    struct Record { var line: Int; var fields: [String] }

    /// Why the text is not CSV.
    struct Failure: Error { var line: Int; var message: String }

    /// All records (blank lines are skipped).
    static func records(_ bytes: [UInt8]) throws(Failure) -> [Record] {
        var out: [Record] = []
        var i = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var line = 1
        var fields: [String] = []
        var field: [UInt8] = []
        var start = line
        var quoted = false, wasQuoted = false
        func endField() { fields.append(String(decoding: field, as: UTF8.self)); field.removeAll(keepingCapacity: true); wasQuoted = false }
        func endRecord() {
            endField()
            if !(fields.count == 1 && fields[0].isEmpty) { out.append(Record(line: start, fields: fields)) }
            fields.removeAll()
        }
        while i < bytes.count {
            let c = bytes[i]
            if quoted {
                if c == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") { field.append(c); i += 2; continue }
                    quoted = false
                } else {
                    if c == UInt8(ascii: "\n") { line += 1 }
                    field.append(c)
                }
                i += 1
                continue
            }
            switch c {
            case UInt8(ascii: "\""):
                guard field.isEmpty && !wasQuoted else { throw Failure(line: line, message: "a quote inside an unquoted field") }
                quoted = true; wasQuoted = true
            case UInt8(ascii: ","):
                endField()
            case UInt8(ascii: "\r") where i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\n"):
                break
            case UInt8(ascii: "\n"):
                endRecord(); line += 1; start = line
            default:
                if wasQuoted { throw Failure(line: line, message: "text after a closing quote") }
                field.append(c)
            }
            i += 1
        }
        if quoted { throw Failure(line: start, message: "unterminated quoted field") }
        if !field.isEmpty || !fields.isEmpty || wasQuoted { endRecord() }
        return out
    }
}
