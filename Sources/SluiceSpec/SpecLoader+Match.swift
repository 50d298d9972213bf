import SluiceCore

/// Declarative `match` predicates.
extension Loader {
    mutating func match(_ node: YAMLNode, _ what: String) -> MatchSpec? {
        guard let pairs = node.mappingPairs else {
            diags.error(node.location, "expected a mapping of field: condition for \(what), found \(node.kindDescription)")
            return nil
        }
        if pairs.isEmpty {
            diags.error(node.location, "\(what) has no conditions")
            return nil
        }
        var clauses: [MatchClause] = []
        var ok = true
        for pair in pairs {
            let field = pair.key.scalarText ?? ""
            guard let path = fieldPath(field, at: pair.key.location, what) else { ok = false; continue }
            let value = pair.value
            switch value.kind {
            case .scalar:
                if value.isNull {
                    diags.error(value.location, "match field '\(field)' compares with null, which never matches (use { exists: false } to test for a missing field)")
                    ok = false
                } else if let v = json(value) {
                    clauses.append(MatchClause(path: path, op: .eq(v)))
                } else { ok = false }
            case .sequence:
                diags.error(value.location, "expected a value or a mapping of operators for match field '\(field)', found a sequence (use { in: [...] })")
                ok = false
            case .mapping(let ops):
                if ops.isEmpty {
                    diags.error(value.location, "match field '\(field)' has no operator (expected \(Suggest.list(Self.matchOps)))")
                    ok = false
                }
                for op in ops {
                    guard let name = op.key.scalarText, Self.matchOps.contains(name) else {
                        let n = op.key.scalarText ?? ""
                        diags.error(op.key.location, "unknown match operator '\(n)' for field '\(field)'" + Suggest.hint(for: n, among: Self.matchOps))
                        ok = false
                        continue
                    }
                    if let m = matchOp(name, op.value, field: field) { clauses.append(MatchClause(path: path, op: m)) } else { ok = false }
                }
            }
        }
        return ok ? MatchSpec(clauses: clauses) : nil
    }

    mutating func matchOp(_ name: String, _ node: YAMLNode, field: String) -> MatchOp? {
        let what = "operator '\(name)' of match field '\(field)'"
        switch name {
        case "exists":
            guard node.isPlainScalar, let text = node.scalarText, let b = YAMLScalars.parseBool(text) else {
                diags.error(node.location, "expected true or false for \(what), found \(node.kindDescription)")
                return nil
            }
            return .exists(b)
        case "in", "not_in":
            guard let items = node.sequenceItems else {
                diags.error(node.location, "expected a list of values for \(what), found \(node.kindDescription)")
                return nil
            }
            var values: [JSONValue] = []
            for item in items {
                if item.isNull {
                    diags.error(item.location, "null in \(what) never matches")
                    return nil
                }
                guard let v = json(item) else { return nil }
                values.append(v)
            }
            return name == "in" ? .isIn(values) : .notIn(values)
        case "eq", "ne":
            if node.isNull {
                diags.error(node.location, "\(what) compares with null, which never matches (use { exists: ... })")
                return nil
            }
            guard let v = json(node) else { return nil }
            return name == "eq" ? .eq(v) : .ne(v)
        default:  // gt gte lt lte
            guard node.scalarText != nil, !node.isNull, let v = json(node) else {
                diags.error(node.location, "expected a number or a string for \(what), found \(node.kindDescription)")
                return nil
            }
            switch v {
            case .int, .double, .string: break
            default:
                diags.error(node.location, "expected a number or a string for \(what), found \(node.kindDescription)")
                return nil
            }
            switch name {
            case "gt": return .gt(v)
            case "gte": return .gte(v)
            case "lt": return .lt(v)
            default: return .lte(v)
            }
        }
    }
}
