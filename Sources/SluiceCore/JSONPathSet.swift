import CSluiceJSON

/// A compiled set of object paths found together in one pass over an event's bytes.
/// Immutable after init, so it is safe to share between threads.
public final class JSONPathSet: @unchecked Sendable {
    let trie: OpaquePointer?
    /// Slot of each path given to init (identical paths share a slot).
    public let slots: [Int]
    /// Number of distinct slots.
    public let slotCount: Int

    public init(_ paths: [[String]]) {
        let trie = sj_paths_new()
        var slots: [Int] = []
        slots.reserveCapacity(paths.count)
        for path in paths {
            slots.append(JSONPathSet.add(trie, path))
        }
        self.trie = trie
        self.slots = slots
        self.slotCount = Int(sj_paths_count(trie))
    }

    deinit { sj_paths_free(trie) }

    private static func add(_ trie: OpaquePointer?, _ path: [String]) -> Int {
        guard trie != nil, !path.isEmpty else { return -1 }
        return withPathSegments(path) { pointers, lengths in Int(sj_paths_add(trie, pointers, lengths, path.count)) }
    }

    /// Finds every path in `event` (a JSON object) and calls body with the value of each slot.
    /// With `distinctKeys` (the bytes are known to repeat no key in any object, e.g. the Lua
    /// encoder wrote them) the scan stops at the last path found instead of looking for a later
    /// duplicate.
    @inline(__always)
    public func find<R>(in event: UnsafeRawBufferPointer, distinctKeys: Bool = false,
                        _ body: (UnsafeBufferPointer<sj_value>) -> R) -> R {
        let n = max(slotCount, 1)
        return withUnsafeTemporaryAllocation(of: sj_value.self, capacity: n) { buf in
            let bytes = event.baseAddress?.assumingMemoryBound(to: UInt8.self)
            if distinctKeys {
                sj_find_many_distinct(trie, bytes, event.count, buf.baseAddress)
            } else {
                sj_find_many(trie, bytes, event.count, buf.baseAddress)
            }
            return body(UnsafeBufferPointer(buf))
        }
    }
}

extension JSONPathSet {
    /// Validates `event` and finds every path in the same pass. `body` gets the values only
    /// when the event is valid; otherwise the syntax error is returned.
    @inline(__always)
    public func validateAndFind<R>(_ event: UnsafeRawBufferPointer, requireObject: Bool = true,
                                   maxDepth: Int = JSONValidator.defaultMaxDepth,
                                   _ body: (UnsafeBufferPointer<sj_value>) -> R) -> Result<R, JSONSyntaxError> {
        let n = max(slotCount, 1)
        let flags = requireObject ? UInt32(SJ_REQUIRE_OBJECT) : 0
        return withUnsafeTemporaryAllocation(of: sj_value.self, capacity: n) { buf in
            let code = sj_validate_find(trie, event.baseAddress?.assumingMemoryBound(to: UInt8.self), event.count,
                                        Int32(clamping: maxDepth), flags, nil, buf.baseAddress)
            if code != SJ_OK {
                return .failure(JSONValidator.run(event, maxDepth: maxDepth, flags: flags)
                                ?? JSONSyntaxError(message: "invalid JSON", offset: 0))
            }
            return .success(body(UnsafeBufferPointer(buf)))
        }
    }
}

/// Calls `body` with a path's segments as C pointers to their UTF-8 bytes and their lengths (the
/// shape `sj_paths_add` and `sl_fields_add` take); the bytes live until `body` returns.
public func withPathSegments<R>(_ path: [String], _ body: ([UnsafePointer<UInt8>?], [Int]) -> R) -> R {
    let storage = path.map { segment -> UnsafeMutableBufferPointer<UInt8> in
        let bytes = Array(segment.utf8)
        let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(bytes.count, 1))
        _ = buffer.initialize(from: bytes)
        return buffer
    }
    defer { storage.forEach { $0.deallocate() } }
    return body(storage.map { UnsafePointer($0.baseAddress) }, path.map { $0.utf8.count })
}

/// The kind of a value found by a path lookup.
public enum JSONKind: Int32, Sendable {
    case missing = 0, null, bool, number, string, array, object
}

extension sj_value {
    @inline(__always) var kind: Int32 { type }
}
