import Foundation
import SluiceCore
import SluiceSpec

/// Why a lookup file could not be read: `path:line: message` (line 0 = the file as a whole).
public struct LookupLoadError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var message: String
    public var description: String { line > 0 ? "\(path):\(line): \(message)" : "\(path): \(message)" }
}

/// One immutable version of a lookup table: key (as a string) -> the row as JSON bytes.
/// Shared read-only by every worker; a refresh builds a new one and swaps the reference.
final class LookupSnapshot: Sendable {
    let rows: [String: [UInt8]]
    init(rows: [String: [UInt8]]) { self.rows = rows }

    /// Reads the whole file; any malformed row fails the load (naming its line).
    static func load(_ spec: FileLookupSpec) throws(LookupLoadError) -> LookupSnapshot {
        guard let data = FileManager.default.contents(atPath: spec.path) else {
            throw LookupLoadError(path: spec.path, line: 0, message: "cannot read the file")
        }
        let bytes = [UInt8](data)
        switch spec.format {
        case .jsonl: return try jsonLines(bytes, spec)
        case .csv: return try csv(bytes, spec)
        }
    }

    /// The key text of a JSON value: strings as they are, integral numbers as integers (7 == "7").
    static func keyText(_ v: JSONValue) -> String? {
        switch v {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d):
            if d == d.rounded(), abs(d) < 9.2e18 { return String(Int64(d)) }
            return String(d)
        default: return nil
        }
    }

    private static func jsonLines(_ bytes: [UInt8], _ spec: FileLookupSpec) throws(LookupLoadError) -> LookupSnapshot {
        var rows: [String: [UInt8]] = [:]
        var line = 0
        for raw in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            line += 1
            var text = raw
            while let last = text.last, last == UInt8(ascii: "\r") || last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { text = text.dropLast() }
            if text.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
            let value: JSONValue
            do { value = try JSONValue.parse(text) } catch {
                throw LookupLoadError(path: spec.path, line: line, message: "invalid JSON: \(error)")
            }
            guard case .object = value else { throw LookupLoadError(path: spec.path, line: line, message: "expected a JSON object") }
            guard let k = value[spec.key], k != JSONValue.null else {
                throw LookupLoadError(path: spec.path, line: line, message: "the row has no key field '\(spec.key)'")
            }
            guard let key = keyText(k) else {
                throw LookupLoadError(path: spec.path, line: line, message: "key field '\(spec.key)' must be a string or a number")
            }
            rows[key] = Array(text)
        }
        return LookupSnapshot(rows: rows)
    }

    private static func csv(_ bytes: [UInt8], _ spec: FileLookupSpec) throws(LookupLoadError) -> LookupSnapshot {
        let records: [CSVReader.Record]
        do { records = try CSVReader.records(bytes) } catch {
            throw LookupLoadError(path: spec.path, line: error.line, message: "invalid CSV: \(error.message)")
        }
        guard let header = records.first else { throw LookupLoadError(path: spec.path, line: 0, message: "the file is empty (expected a header row)") }
        guard let keyIndex = header.fields.firstIndex(of: spec.key) else {
            throw LookupLoadError(path: spec.path, line: header.line, message: "the header has no key column '\(spec.key)'")
        }
        var rows: [String: [UInt8]] = [:]
        for r in records.dropFirst() {
            guard r.fields.count == header.fields.count else {
                throw LookupLoadError(path: spec.path, line: r.line, message: "expected \(header.fields.count) fields, found \(r.fields.count)")
            }
            let object = JSONValue.object(Array(zip(header.fields, r.fields.map { JSONValue.string($0) })))
            rows[r.fields[keyIndex]] = object.encoded()
        }
        return LookupSnapshot(rows: rows)
    }
}
