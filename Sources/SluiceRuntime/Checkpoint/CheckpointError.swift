/// Why a checkpoint could not be written, read or used. Carries the file and what was wrong.
public enum CheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The bytes are not a checkpoint: torn, truncated, bit-flipped or of another format.
    case malformed(String)
    /// A file operation failed (path, what, errno text).
    case io(path: String, message: String)
    /// `rewind --to` names nothing usable.
    case notFound(String)

    public var description: String {
        switch self {
        case .malformed(let m): return m
        case .io(let path, let message): return "\(path): \(message)"
        case .notFound(let m): return m
        }
    }
}
