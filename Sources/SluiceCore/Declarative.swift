/// Declarative forms of `filter` and `project`: evaluated on event bytes, never in Lua.

/// `match: { field.path: VALUE | { op: VALUE } }`: every clause must hold.
public struct MatchSpec: Sendable {
    public var clauses: [MatchClause]
    public init(clauses: [MatchClause]) { self.clauses = clauses }
}

public struct MatchClause: Sendable {
    /// Dotted path split into segments: `client.os` -> ["client", "os"].
    public var path: [String]
    public var op: MatchOp
    public init(path: [String], op: MatchOp) { self.path = path; self.op = op }
}

/// A missing field or null never satisfies a comparison (`eq`, `ne`, `in`, `not_in`, `gt`...).
public enum MatchOp: Sendable {
    case eq(JSONValue)
    case ne(JSONValue)
    case isIn([JSONValue])
    case notIn([JSONValue])
    case gt(JSONValue)
    case gte(JSONValue)
    case lt(JSONValue)
    case lte(JSONValue)
    case exists(Bool)
}

/// One output field of `project`: `output` gets the value at `path` (missing -> field omitted).
public struct ProjectField: Sendable {
    public var output: String
    public var path: [String]
    public init(output: String, path: [String]) { self.output = output; self.path = path }
}

