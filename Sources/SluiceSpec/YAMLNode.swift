import SluiceCore

/// A YAML document as a tree. Every node knows where it starts in the file.
public struct YAMLNode: Sendable {
    public enum ScalarStyle: Sendable, Equatable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    public enum Kind: Sendable {
        case scalar(String, ScalarStyle)
        case sequence([YAMLNode])
        /// Keys in document order (merge keys `<<` already applied).
        case mapping([YAMLPair])
    }

    public var kind: Kind
    /// Where the node starts (1-based line and column).
    public var location: SourceLocation
    /// Line on which a scalar ends (used to locate text inside single-line scalars).
    public var endLine: Int
    /// Explicit tag as resolved by libyaml (`!!str` -> `tag:yaml.org,2002:str`), or nil.
    public var tag: String?
    /// Number of nodes in this subtree, itself included.
    public var size: Int

    public init(kind: Kind, location: SourceLocation, endLine: Int? = nil, tag: String? = nil) {
        self.kind = kind
        self.location = location
        self.endLine = endLine ?? location.line
        self.tag = tag
        switch kind {
        case .scalar: size = 1
        case .sequence(let items): size = 1 + items.reduce(0) { $0 + $1.size }
        case .mapping(let pairs): size = 1 + pairs.reduce(0) { $0 + $1.key.size + $1.value.size }
        }
    }

    /// The text of a scalar, nil for collections.
    public var scalarText: String? {
        if case .scalar(let s, _) = kind { return s }
        return nil
    }

    public var isPlainScalar: Bool {
        if case .scalar(_, .plain) = kind, tag == nil { return true }
        return false
    }

    /// A plain `~`, `null`, `Null`, `NULL`, empty value, or a `!!null` tagged scalar.
    public var isNull: Bool {
        guard case .scalar(let s, let style) = kind else { return false }
        if tag == YAMLTag.null { return true }
        return tag == nil && style == .plain && YAMLScalars.isNullText(s)
    }

    public var mappingPairs: [YAMLPair]? {
        if case .mapping(let p) = kind { return p }
        return nil
    }

    public var sequenceItems: [YAMLNode]? {
        if case .sequence(let s) = kind { return s }
        return nil
    }

    /// For messages: "a mapping", "a sequence", "null", or the quoted scalar text.
    public var kindDescription: String {
        switch kind {
        case .mapping: return "a mapping"
        case .sequence: return "a sequence"
        case .scalar(let s, _):
            if isNull { return "null" }
            let short = s.count > 40 ? String(s.prefix(40)) + "..." : s
            return "'\(short)'"
        }
    }
}

public struct YAMLPair: Sendable {
    public var key: YAMLNode
    public var value: YAMLNode
    public init(key: YAMLNode, value: YAMLNode) { self.key = key; self.value = value }
}

enum YAMLTag {
    static let str = "tag:yaml.org,2002:str"
    static let int = "tag:yaml.org,2002:int"
    static let float = "tag:yaml.org,2002:float"
    static let bool = "tag:yaml.org,2002:bool"
    static let null = "tag:yaml.org,2002:null"
    static let map = "tag:yaml.org,2002:map"
    static let seq = "tag:yaml.org,2002:seq"
    static let nonSpecific = "!"
}
