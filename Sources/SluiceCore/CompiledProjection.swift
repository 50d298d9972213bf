import CSluiceJSON

/// A `project:` spec compiled for evaluation directly on event bytes (never Lua).
///
/// `apply` appends one JSON object holding the output fields in the given order. Each value
/// is copied byte for byte from the input (numbers such as 2^53+1, escapes and nested
/// objects are preserved exactly). A missing field is omitted (as is one whose parent is not
/// an object); a null stays null. With no field found the output is `{}`.
public struct CompiledProjection: Sendable {
    let paths: JSONPathSet
    /// Per output field: its slot and the range of its key prefix in `keyBytes`.
    let fields: [Field]
    /// `,"name":` for every field, concatenated.
    let keyBytes: [UInt8]

    struct Field: Sendable {
        var slot: Int
        var keyStart: Int
        var keyCount: Int
    }

    public init(_ fields: [ProjectField]) {
        paths = JSONPathSet(fields.map(\.path))
        var keys: [UInt8] = []
        var compiled: [Field] = []
        for (i, f) in fields.enumerated() {
            let start = keys.count
            keys.append(UInt8(ascii: ","))
            JSONWriter.appendString(f.output, to: &keys)
            keys.append(UInt8(ascii: ":"))
            compiled.append(Field(slot: paths.slots[i], keyStart: start, keyCount: keys.count - start))
        }
        self.fields = compiled
        self.keyBytes = keys
    }

    /// Appends the projection of `event` (a JSON object the validator accepted) to `out`.
    public func apply(_ event: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        paths.find(in: event) { values in
            // Exact output size first, so `out` grows at most once.
            var total = 2
            for f in fields where f.slot >= 0 {
                let v = values[f.slot]
                if v.type != Int32(SJ_MISSING) { total += f.keyCount + v.len }
            }
            out.reserveCapacity(out.count + total)
            out.append(UInt8(ascii: "{"))
            var first = true
            keyBytes.withUnsafeBytes { keys in
                for f in fields where f.slot >= 0 {
                    let v = values[f.slot]
                    if v.type == Int32(SJ_MISSING) { continue }
                    let skip = first ? 1 : 0
                    first = false
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: keys[(f.keyStart + skip)..<(f.keyStart + f.keyCount)]))
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: event[v.off..<(v.off + v.len)]))
                }
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    public func apply(_ event: [UInt8], into out: inout [UInt8]) {
        event.withUnsafeBytes { apply($0, into: &out) }
    }

    /// The projection of `event` as a new array.
    public func apply(_ event: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        apply(event, into: &out)
        return out
    }
}
