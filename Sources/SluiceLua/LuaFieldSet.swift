import CSluiceLua

/// Event fields to decode into a UDF's table instead of the whole event
/// (`LuaEngine.decodeJSON(_:fields:)`). Immutable once made; belongs to one worker.
public final class LuaFieldSet {
    let raw: OpaquePointer
    /// The paths it was made from.
    public let paths: [[String]]

    /// nil if the set cannot hold them all (64 fields with their prefixes): decode everything then.
    public init?(_ paths: [[String]]) {
        guard let raw = sl_fields_new() else { return nil }
        self.raw = raw
        self.paths = paths
        for path in paths {
            let segments = path.map { Array($0.utf8) }
            let added = withSegmentPointers(segments) { pointers, lengths in
                sl_fields_add(raw, pointers, lengths, segments.count)
            }
            if added != 0 { return nil }
        }
    }

    deinit { sl_fields_free(raw) }
}

/// Calls `body` with C pointers to each segment's bytes and their lengths.
private func withSegmentPointers<R>(_ segments: [[UInt8]], _ body: ([UnsafePointer<UInt8>?], [Int]) -> R) -> R {
    var pointers: [UnsafePointer<UInt8>?] = []
    var lengths: [Int] = []
    func next(_ i: Int) -> R {
        if i == segments.count { return body(pointers, lengths) }
        return segments[i].withUnsafeBufferPointer { buf in
            pointers.append(buf.baseAddress ?? UnsafePointer(bitPattern: 1))
            lengths.append(buf.count)
            return next(i + 1)
        }
    }
    return next(0)
}
