import CSluiceJSON

/// A `project:` spec compiled for evaluation directly on event bytes (never Lua).
///
/// `apply` appends one JSON object holding the output fields in the given order. Each value
/// is copied byte for byte from the input (numbers such as 2^53+1, escapes and nested
/// objects are preserved exactly). A missing field is omitted (as is one whose parent is not
/// an object); a null stays null. With no field found the output is `{}`.
public struct CompiledProjection: Sendable {
    /// The path set this projection looks up by itself (nil when part of a larger plan).
    let paths: JSONPathSet?
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
        let set = JSONPathSet(fields.map(\.path))
        var i = 0
        self.init(fields, paths: set) { _ in defer { i += 1 }; return set.slots[i] }
    }

    /// `slot(path)` gives each field's slot (called once per field, in order; -1 = never present).
    init(_ fields: [ProjectField], paths: JSONPathSet?, slot: ([String]) -> Int) {
        self.paths = paths
        var keys: [UInt8] = []
        var compiled: [Field] = []
        for f in fields {
            let start = keys.count
            keys.append(UInt8(ascii: ","))
            JSONWriter.appendString(f.output, to: &keys)
            keys.append(UInt8(ascii: ":"))
            compiled.append(Field(slot: slot(f.path), keyStart: start, keyCount: keys.count - start))
        }
        self.fields = compiled
        self.keyBytes = keys
    }

    /// Appends the projection of `event` (a JSON object the validator accepted) to `out`.
    public func apply(_ event: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        guard let paths else { return }
        paths.find(in: event) { values in write(values, event, into: &out) }
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

    /// Writes the output object from values already found (slots as given at init).
    func write(_ values: UnsafeBufferPointer<sj_value>, _ event: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        fields.withUnsafeBufferPointer { fs in
            keyBytes.withUnsafeBytes { keys in
                // Exact output size first; then one copy into `out`.
                var total = 2
                for f in fs where f.slot >= 0 {
                    let v = values[f.slot]
                    if v.type != Int32(SJ_MISSING) { total += f.keyCount + v.len }
                }
                var first = true
                withUnsafeTemporaryAllocation(byteCount: total, alignment: 1) { buf in
                    guard let dst = buf.baseAddress else { return }
                    var n = 0
                    dst.storeBytes(of: UInt8(ascii: "{"), toByteOffset: 0, as: UInt8.self)
                    n = 1
                    for f in fs where f.slot >= 0 {
                        let v = values[f.slot]
                        if v.type == Int32(SJ_MISSING) { continue }
                        let skip = first ? 1 : 0
                        first = false
                        let klen = f.keyCount - skip
                        (dst + n).copyMemory(from: keys.baseAddress! + f.keyStart + skip, byteCount: klen)
                        n += klen
                        (dst + n).copyMemory(from: event.baseAddress! + v.off, byteCount: v.len)
                        n += v.len
                    }
                    dst.storeBytes(of: UInt8(ascii: "}"), toByteOffset: n, as: UInt8.self)
                    n += 1
                    out.append(contentsOf: UnsafeRawBufferPointer(start: dst, count: n))
                }
            }
        }
    }
}
