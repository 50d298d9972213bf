import SluiceCore

/// Component sections, type keys and `from`, shared by sources, transforms and sinks.
extension Loader {
    /// The entries of a component section; records names for the graph and reports duplicates.
    mutating func section(_ top: Fields, _ key: String, role: GraphNode.Role) -> [(YAMLNode, YAMLNode)] {
        guard let node = top[key], !node.isNull else { return [] }
        guard let pairs = node.mappingPairs else {
            diags.error(node.location, "expected a mapping for '\(key)', found \(node.kindDescription)")
            return []
        }
        var out: [(YAMLNode, YAMLNode)] = []
        for pair in pairs {
            let name = pair.key.scalarText ?? ""
            if !isValidName(name) {
                diags.error(pair.key.location, "invalid component name '\(name)' (use letters, digits, '_' and '-')")
            } else if name == "dead_letter" {
                diags.error(pair.key.location, "'dead_letter' is reserved for the dead letter sink; choose another name")
            }
            if let first = declared[name] {
                diags.error(pair.key.location, "duplicate component name '\(name)' (also defined at line \(first.location.line), column \(first.location.column))")
            } else {
                declared[name] = (role, pair.key.location)
            }
            out.append((pair.key, pair.value))
        }
        return out
    }

    /// Finds the single type key of a component. Reports zero or several; returns nil then (or if the type is unsupported).
    mutating func typeKey(_ kind: String, _ name: String, _ key: YAMLNode, _ f: Fields?, _ value: YAMLNode,
                          types: [String], unsupported: [String]) -> (String, YAMLNode, YAMLNode)? {
        let present = (value.mappingPairs ?? []).filter { p in
            guard let k = p.key.scalarText else { return false }
            return types.contains(k) || unsupported.contains(k)
        }
        guard f != nil else { return nil }
        if present.isEmpty {
            if lastSuggestions.contains(where: types.contains) { return nil }  // a misspelt type key, already reported
            diags.error(key.location, "\(kind) '\(name)' has no type key (expected one of: \(types.joined(separator: ", ")))")
            return nil
        }
        if present.count > 1 {
            let names = present.compactMap { $0.key.scalarText }.map { "'\($0)'" }
            diags.error(present[1].key.location, "\(kind) '\(name)' has more than one type key (\(Suggest.list(names).replacingOccurrences(of: " or ", with: " and ")))")
            return nil
        }
        let t = present[0]
        guard let k = t.key.scalarText, types.contains(k) else { return nil }  // unsupported: already reported
        return (k, t.key, t.value)
    }

    /// Reads `from` (a name or a list of names) and records the component in the graph.
    mutating func readFrom(_ kind: String, _ name: String, _ key: YAMLNode, _ f: Fields?, role: GraphNode.Role) -> [String] {
        var from: [(String, SourceLocation)] = []
        var listed = Set<String>()
        var known = f != nil
        if let f {
            if let node = f["from"] {
                let what = "'from' of \(kind) '\(name)'"
                let items: [YAMLNode] = node.sequenceItems ?? [node]
                if items.isEmpty {
                    diags.error(node.location, "\(what) must name at least one component")
                    known = false
                }
                for item in items {
                    guard let n = string(item, what) else { known = false; continue }
                    if !listed.insert(n).inserted {
                        diags.error(item.location, "'\(n)' is listed twice in \(what)")
                        continue
                    }
                    from.append((n, item.location))
                }
            } else {
                diags.error(key.location, "missing 'from' in \(kind) '\(name)'")
                known = false
            }
        }
        graph.append(GraphNode(name: name, role: role, location: key.location, from: from, fromKnown: known))
        return from.map(\.0)
    }
}
