import SluiceCore

/// Sources: `file`, `stdin`, `kafka`, `generate`.
extension Loader {
    mutating func parseSource(_ key: YAMLNode, _ value: YAMLNode) -> SourceSpec? {
        let name = key.scalarText ?? ""
        let what = "source '\(name)'"
        let f = fields(value, what, allowed: Self.sourceTypes + ["format", "time", "lateness", "idle"])
        graph.append(GraphNode(name: name, role: .source, location: key.location, from: [], fromKnown: true))
        var format = DataFormat.json
        if let node = f?["format"], let v = choice(node, "'format' of \(what)", ["json", "text"]) {
            format = DataFormat(rawValue: v) ?? .json
        }
        let time = eventTime(f, what)
        guard let (type, typeKey, body) = typeKey("source", name, key, f, value, types: Self.sourceTypes, unsupported: [])
        else { return nil }
        let inner = "'\(type)' of \(what)"
        var kind: SourceSpec.Kind?
        switch type {
        case "file":
            guard let b = fields(body, inner, allowed: ["path", "follow"]) else { return nil }
            var follow = false
            if let node = b["follow"] { follow = boolean(node, "'follow' in \(inner)") ?? false }
            if let node = b["path"] {
                if let p = path(node, "'path' in \(inner)") {
                    kind = .file(path: p, follow: follow)
                    fileSourcePaths.append((name, p, node.location))
                }
            } else {
                diags.error(typeKey.location, "missing 'path' in \(inner)")
            }
        case "stdin":
            if fields(body, inner, allowed: []) != nil { kind = .stdin }
            if let first = firstStdin {
                diags.error(typeKey.location, "\(what) reads stdin, which source '\(first.name)' (line \(first.location.line), column \(first.location.column)) already reads; a pipeline can read stdin once")
            } else {
                firstStdin = (name, typeKey.location)
            }
        case "kafka":
            guard let b = fields(body, inner, allowed: ["brokers", "topics", "group", "start", "options"]) else { return nil }
            let brokers = required(b, "brokers", inner, typeKey).flatMap { nonEmptyString($0, "'brokers' in \(inner)") }
            var topics: [String]?
            if let node = required(b, "topics", inner, typeKey) {
                if let items = node.sequenceItems, !items.isEmpty {
                    let names = items.compactMap { nonEmptyString($0, "a topic in \(inner)") }
                    if names.count == items.count { topics = names }
                } else if node.sequenceItems != nil {
                    diags.error(node.location, "'topics' in \(inner) must list at least one topic")
                } else if node.scalarText != nil, !node.isNull {
                    topics = nonEmptyString(node, "'topics' in \(inner)").map { [$0] }
                } else {
                    diags.error(node.location, "expected a list of topics for 'topics' in \(inner), found \(node.kindDescription)")
                }
            }
            let group = b["group"].flatMap { nonEmptyString($0, "'group' in \(inner)") }
            let start = b["start"].flatMap { choice($0, "'start' in \(inner)", ["earliest", "latest"]) } ?? "earliest"
            let options = b["options"].flatMap { kafkaOptions($0, "'options' in \(inner)") } ?? [:]
            if let brokers, let topics {
                kind = .kafka(KafkaSourceSpec(brokers: brokers, topics: topics, group: group, start: start, options: options))
            }
        case "generate":
            guard let b = fields(body, inner, allowed: ["count", "rate", "udf"]) else { return nil }
            var count: Int?
            var rate: Double?
            var ok = true
            if let node = b["count"], !node.isNull {
                count = integer(node, "'count' in \(inner)", min: 0)
                ok = ok && count != nil
            }
            if let node = b["rate"], !node.isNull {
                if let text = node.scalarText, let r = YAMLScalars.parseRate(text) { rate = r } else {
                    diags.error(node.location, "invalid rate \(node.kindDescription) for 'rate' in \(inner) (expected e.g. 100/s, 600/m or 10/h)")
                    ok = false
                }
            }
            if let node = b["udf"] {
                if let u = udfRef(node, "'udf' in \(inner)"), ok { kind = .generate(count: count, ratePerSecond: rate, udf: u) }
            } else {
                diags.error(typeKey.location, "missing 'udf' in \(inner)")
            }
        default:
            return nil
        }
        guard let kind, let time else { return nil }
        var source = SourceSpec(name: name, location: key.location, format: format, kind: kind)
        source.time = time
        return source
    }

    /// `time: FIELD`, `lateness: D`, `idle: D` of a source; nil if any of them is invalid.
    mutating func eventTime(_ f: Fields?, _ what: String) -> EventTimeSpec? {
        var t = EventTimeSpec()
        var ok = true
        if let node = f?["time"] {
            if let text = string(node, "'time' of \(what)"), let p = fieldPath(text, at: node.location, "'time' of \(what)") {
                t.field = p
            } else { ok = false }
        }
        if let node = f?["lateness"] {
            if let v = duration(node, "'lateness' of \(what)", positive: false) { t.lateness = v } else { ok = false }
        }
        if let node = f?["idle"] {
            if let v = duration(node, "'idle' of \(what)", positive: true) { t.idle = v } else { ok = false }
        }
        return ok ? t : nil
    }
}
