import SluiceCore

/// Stateful transforms: `join`, `dedup`, `aggregate`, with `parallelism` and `state` limits.
extension Loader {
    static let statefulTypes = ["join", "dedup", "aggregate"]

    /// Parses a `join`, `dedup` or `aggregate` transform; records its graph node (with the `from`s inside its body).
    mutating func parseStateful(_ name: String, _ key: YAMLNode, _ f: Fields, _ type: String,
                                _ typeKey: YAMLNode, _ body: YAMLNode) -> TransformSpec? {
        let what = "transform '\(name)'"
        var ok = true
        var parallelism: Int?
        if let n = f["parallelism"] {
            parallelism = integer(n, "'parallelism' of \(what)", min: 1)
            ok = ok && parallelism != nil
        }
        var state = StateLimits()
        if let n = f["state"] {
            if let s = stateLimits(n, "'state' of \(what)") { state = s } else { ok = false }
        }
        var kind: TransformSpec.Kind?
        var from: [String] = []
        switch type {
        case "join":
            if let j = parseJoin(name, key, f, typeKey, body) {
                kind = .join(j)
                from = j.left.from == j.right.from ? [j.left.from] : [j.left.from, j.right.from]
            }
        case "dedup":
            if let d = parseDedup(name, key, f, typeKey, body) { kind = .dedup(d); from = [d.input.from] }
        default:
            if let a = parseAggregate(name, key, f, typeKey, body) { kind = .aggregate(a); from = [a.input.from] }
        }
        guard ok, let kind else { return nil }
        var t = TransformSpec(name: name, location: key.location, from: from, kind: kind)
        t.parallelism = parallelism
        t.state = state
        return t
    }

    /// Records a transform's graph node from inputs found inside its body (the same name twice counts once).
    mutating func recordNode(_ name: String, _ key: YAMLNode, _ inputs: [(String, SourceLocation)], known: Bool) {
        var seen = Set<String>()
        let unique = inputs.filter { seen.insert($0.0).inserted }
        graph.append(GraphNode(name: name, role: .transform, location: key.location,
                               from: unique.map { (name: $0.0, location: $0.1) }, fromKnown: known))
    }

    // MARK: - join

    /// `join: { left: { from, key }, right: { from, key }, within, merge, emit, unmatched }`; a join takes no top-level `from`.
    mutating func parseJoin(_ name: String, _ key: YAMLNode, _ f: Fields, _ typeKey: YAMLNode, _ body: YAMLNode) -> JoinSpec? {
        let what = "transform '\(name)'"
        let inner = "'join' of \(what)"
        if let kn = f.keyNode("from") {
            diags.error(kn.location, "\(what) takes no 'from' (the inputs of a join are 'left.from' and 'right.from')")
        }
        guard let b = fields(body, inner, allowed: ["left", "right", "within", "merge", "emit", "unmatched"]) else {
            recordNode(name, key, [], known: false)
            return nil
        }
        var inputs: [(String, SourceLocation)] = []
        var known = true
        var sides: [KeyedInput?] = []
        for side in ["left", "right"] {
            guard let node = required(b, side, inner, typeKey) else { known = false; sides.append(nil); continue }
            let sideWhat = "'\(side)' of \(inner)"
            guard let sf = fields(node, sideWhat, allowed: ["from", "key"]), let sideKey = b.keyNode(side) else {
                known = false; sides.append(nil); continue
            }
            let input = required(sf, "from", sideWhat, sideKey).flatMap { singleFrom($0, "'from' in \(sideWhat)") }
            if let input { inputs.append(input) } else { known = false }
            let template = required(sf, "key", sideWhat, sideKey).flatMap { keyTemplate($0, "'key' in \(sideWhat)") }
            if let input, let template, let keyNode = sf["key"] {
                sides.append(KeyedInput(from: input.0, key: template, location: keyNode.location))
            } else {
                sides.append(nil)
            }
        }
        recordNode(name, key, inputs, known: known)
        let within = required(b, "within", inner, typeKey).flatMap { duration($0, "'within' in \(inner)", positive: true) }
        var merge: UDFRef?
        var ok = true
        if let node = b["merge"] {
            merge = udfBody(node, "'merge' in \(inner)")
            ok = merge != nil
        }
        var emit = JoinSpec.Emit.complete
        if let node = b["emit"] {
            if let v = choice(node, "'emit' in \(inner)", ["complete", "eager"]), let e = JoinSpec.Emit(rawValue: v) { emit = e } else { ok = false }
        }
        var unmatched = JoinSpec.Unmatched.drop
        if let node = b["unmatched"] {
            if let v = choice(node, "'unmatched' in \(inner)", ["drop", "emit"]), let u = JoinSpec.Unmatched(rawValue: v) {
                unmatched = u
            } else { ok = false }
        }
        guard ok, sides.count == 2, let left = sides[0], let right = sides[1], let within else { return nil }
        return JoinSpec(left: left, right: right, within: within, merge: merge, emit: emit, unmatched: unmatched)
    }

    // MARK: - dedup

    /// `dedup: { from, key, within }` (`from` may also sit at the transform level).
    mutating func parseDedup(_ name: String, _ key: YAMLNode, _ f: Fields, _ typeKey: YAMLNode, _ body: YAMLNode) -> DedupSpec? {
        let inner = "'dedup' of transform '\(name)'"
        let b = fields(body, inner, allowed: ["from", "key", "within"])
        let input = keyedFrom(name, key, f, b, type: "dedup")
        guard let b else { return nil }
        let template = required(b, "key", inner, typeKey).flatMap { keyTemplate($0, "'key' in \(inner)") }
        let within = required(b, "within", inner, typeKey).flatMap { duration($0, "'within' in \(inner)", positive: true) }
        guard let input, let template, let keyNode = b["key"], let within else { return nil }
        return DedupSpec(input: KeyedInput(from: input, key: template, location: keyNode.location), within: within)
    }

    /// The single input of a `dedup` or `aggregate`: `from` at the transform level or inside the body, not both.
    /// Records the graph node.
    mutating func keyedFrom(_ name: String, _ key: YAMLNode, _ f: Fields, _ b: Fields?, type: String) -> String? {
        let what = "transform '\(name)'"
        let outer = f["from"]
        let innerNode = b?["from"]
        var chosen: YAMLNode?
        if outer != nil, let kn = b?.keyNode("from") {
            diags.error(kn.location, "\(what) has 'from' both at the transform and in '\(type)' (give it once)")
            chosen = outer
        } else {
            chosen = outer ?? innerNode
        }
        guard let node = chosen else {
            if b != nil { diags.error(key.location, "missing 'from' in \(what)") }
            recordNode(name, key, [], known: false)
            return nil
        }
        let where_ = outer != nil ? "'from' of \(what)" : "'from' in '\(type)' of \(what)"
        let input = singleFrom(node, where_)
        recordNode(name, key, input.map { [$0] } ?? [], known: input != nil)
        return input?.0
    }

    // MARK: - Shared pieces

    /// `state: { max_keys: N, max_bytes: SIZE }`.
    mutating func stateLimits(_ node: YAMLNode, _ what: String) -> StateLimits? {
        guard let s = fields(node, what, allowed: ["max_keys", "max_bytes"]) else { return nil }
        var limits = StateLimits()
        var ok = true
        if let n = s["max_keys"] {
            limits.maxKeys = integer(n, "'max_keys' in \(what)", min: 1)
            ok = ok && limits.maxKeys != nil
        }
        if let n = s["max_bytes"] {
            if let text = n.scalarText, !n.isNull, let v = YAMLScalars.parseSize(text), v > 0 { limits.maxBytes = v } else {
                diags.error(n.location, "invalid size \(n.kindDescription) for 'max_bytes' in \(what) (expected e.g. 256MiB, 512KiB or a number of bytes)")
                ok = false
            }
        }
        return ok ? limits : nil
    }

    /// One upstream component name (a stateful input reads exactly one).
    mutating func singleFrom(_ node: YAMLNode, _ what: String) -> (String, SourceLocation)? {
        if let items = node.sequenceItems {
            if items.count == 1, let n = nonEmptyString(items[0], what) { return (n, items[0].location) }
            diags.error(node.location, "\(what) must name exactly one component, found a list of \(items.count)")
            return nil
        }
        return nonEmptyString(node, what).map { ($0, node.location) }
    }

    /// A key template (with at least one `{field}` if `requireField`); a malformed one is reported at its node.
    mutating func keyTemplate(_ node: YAMLNode, _ what: String, requireField: Bool = true) -> KeyTemplate? {
        guard let text = nonEmptyString(node, what) else { return nil }
        let template: KeyTemplate
        do {
            template = try KeyTemplate(text)
        } catch {
            diags.error(node.location, "invalid key template '\(text)' for \(what): \(error.message)")
            return nil
        }
        if requireField && template.fields.isEmpty {
            diags.error(node.location, "key template '\(text)' for \(what) names no field (e.g. '{profile_id}')")
            return nil
        }
        for field in template.fields where fieldPath(field, at: node.location, "key template '\(text)' for \(what)") == nil {
            return nil
        }
        return template
    }

    /// `{ udf: module.function }`.
    mutating func udfBody(_ node: YAMLNode, _ what: String) -> UDFRef? {
        guard let b = fields(node, what, allowed: ["udf"]) else { return nil }
        guard let u = b["udf"] else {
            if lastSuggestions.isEmpty { diags.error(node.location, "missing 'udf' in \(what) (e.g. { udf: module.function })") }
            return nil
        }
        return udfRef(u, "'udf' in \(what)")
    }
}
