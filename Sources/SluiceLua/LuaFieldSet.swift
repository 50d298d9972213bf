import CSluiceLua
import SluiceCore

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
        for path in paths where withPathSegments(path, { sl_fields_add(raw, $0, $1, path.count) }) != 0 {
            return nil
        }
    }

    deinit { sl_fields_free(raw) }
}
