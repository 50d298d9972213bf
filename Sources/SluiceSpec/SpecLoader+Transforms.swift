import SluiceCore

/// Transforms; the stateless ones (`filter`, `map`, `flat_map`, `project`) in full.
extension Loader {
    mutating func parseTransform(_ key: YAMLNode, _ value: YAMLNode) -> TransformSpec? {
        let name = key.scalarText ?? ""
        let what = "transform '\(name)'"
        let f = fields(value, what, allowed: Self.transformTypes + ["from", "parallelism", "state"])
        let typed = typeKey("transform", name, key, f, value, types: Self.transformTypes, unsupported: [])
        if let (type, typeKey, body) = typed, Self.statefulTypes.contains(type), let f {
            return parseStateful(name, key, f, type, typeKey, body)
        }
        if typed == nil, f?.has("from") == false, lastSuggestions.contains(where: Self.statefulTypes.contains) {
            // A misspelt stateful type key (already reported): its inputs may be inside the body, so no "missing 'from'".
            recordNode(name, key, [], known: false)
            return nil
        }
        let from = readFrom("transform", name, key, f, role: .transform)
        guard let (type, typeKey, body) = typed else { return nil }
        for k in ["parallelism", "state"] {
            if let kn = f?.keyNode(k) {
                diags.error(kn.location, "'\(k)' applies only to stateful transforms (join, dedup, aggregate), not to '\(type)' (in \(what))")
            }
        }
        let inner = "'\(type)' of \(what)"
        var kind: TransformSpec.Kind?
        switch type {
        case "filter":
            if body.scalarText != nil {
                if let e = nonEmptyString(body, inner) { kind = .filter(.lua(expression: e, location: body.location)) }
            } else if body.mappingPairs != nil {
                guard let b = fields(body, inner, allowed: ["udf", "match"]) else { return nil }
                if b.has("udf") && b.has("match") {
                    diags.error(b.keyNode("match")!.location, "\(inner) takes either 'udf' or 'match', not both")
                } else if let u = b["udf"] {
                    if let ref = udfRef(u, "'udf' in \(inner)") { kind = .filter(.udf(ref)) }
                } else if let m = b["match"] {
                    if let spec = match(m, "'match' in \(inner)") { kind = .filter(.match(spec)) }
                } else if b.pairs.isEmpty && (body.mappingPairs ?? []).isEmpty {
                    diags.error(body.location, "\(inner) needs 'udf' or 'match'")
                }
            } else {
                diags.error(body.location, "expected a Lua expression, { udf: module.function } or { match: {...} } for \(inner), found \(body.kindDescription)")
            }
        case "map", "flat_map":
            guard let b = fields(body, inner, allowed: ["udf"]) else { return nil }
            if let u = b["udf"] {
                if let ref = udfRef(u, "'udf' in \(inner)") { kind = type == "map" ? .map(ref) : .flatMap(ref) }
            } else {
                diags.error(typeKey.location, "missing 'udf' in \(inner)")
            }
        case "project":
            if let p = project(body, inner) { kind = .project(p) }
        default:
            return nil
        }
        guard let kind else { return nil }
        return TransformSpec(name: name, location: key.location, from: from, kind: kind)
    }

    mutating func project(_ body: YAMLNode, _ what: String) -> [ProjectField]? {
        var out: [ProjectField] = []
        var ok = true
        var seen: [String: SourceLocation] = [:]
        func add(_ self_: inout Loader, _ output: String, _ path: [String], _ at: SourceLocation) {
            if let first = seen[output] {
                self_.diags.error(at, "duplicate output field '\(output)' in \(what) (first at line \(first.line), column \(first.column))")
                ok = false
            } else {
                seen[output] = at
                out.append(ProjectField(output: output, path: path))
            }
        }
        switch body.kind {
        case .mapping(let pairs):
            for pair in pairs {
                let output = pair.key.scalarText ?? ""
                guard let text = string(pair.value, "field '\(output)' in \(what)"),
                      let p = fieldPath(text, at: pair.value.location, "field '\(output)' in \(what)") else { ok = false; continue }
                add(&self, output, p, pair.key.location)
            }
        case .sequence(let items):
            for item in items {
                guard let text = string(item, "a field of \(what)"),
                      let p = fieldPath(text, at: item.location, "\(what)") else { ok = false; continue }
                add(&self, p[p.count - 1], p, item.location)
            }
        case .scalar:
            diags.error(body.location, "expected a mapping (output: input.path) or a list of paths for \(what), found \(body.kindDescription)")
            return nil
        }
        if out.isEmpty && ok {
            diags.error(body.location, "\(what) selects no fields")
            return nil
        }
        return ok ? out : nil
    }
}
