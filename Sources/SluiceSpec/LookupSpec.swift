/// `lookups: NAME: { file: { path, key }, refresh }`: a side input read by UDFs with `ctx.lookup(name, key)`.
public struct LookupSpec: Sendable {
    public var name: String
    public var location: SourceLocation
    public var kind: Kind
    public var refresh: LookupRefresh

    public enum Kind: Sendable {
        case file(FileLookupSpec)
    }

    public init(name: String, location: SourceLocation, kind: Kind, refresh: LookupRefresh = .never) {
        self.name = name; self.location = location; self.kind = kind; self.refresh = refresh
    }
}

/// A table read from a file: JSON lines (one object per line) or CSV with a header row.
public struct FileLookupSpec: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable { case jsonl, csv }
    /// Absolute (resolved against the spec directory).
    public var path: String
    /// The top-level field whose value (as a string: 7 and "7" are one key) keys each row.
    public var key: String
    /// From the file extension: `.csv` is CSV, anything else JSON lines.
    public var format: Format
    public init(path: String, key: String, format: Format) { self.path = path; self.key = key; self.format = format }
}

/// When a lookup table is read again (and swapped atomically; a failed read keeps the old table).
public enum LookupRefresh: Sendable, Equatable {
    /// Read once, at start.
    case never
    /// Every so many milliseconds.
    case every(Int64)
    /// When the file changes (inotify on its directory: renames over it and symlink swaps count).
    case watch
}
