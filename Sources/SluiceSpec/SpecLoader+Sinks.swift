import SluiceCore

/// Sinks and the dead letter sink; `when` predicates.
extension Loader {
    mutating func parseSink(_ key: YAMLNode, _ value: YAMLNode, settings: Settings, deadLetter: Bool) -> SinkSpec? {
        let name = deadLetter ? "dead_letter" : (key.scalarText ?? "")
        let what = deadLetter ? "'dead_letter'" : "sink '\(name)'"
        let unsupportedTypes: [String] = []
        let f = fields(value, what, allowed: Self.sinkTypes + ["from", "when", "format", "queue", "retry"])
        let topSuggestions = lastSuggestions
        var from: [String] = []
        if deadLetter {
            for k in ["from", "when"] {
                if let kn = f?.keyNode(k) {
                    diags.error(kn.location, "'dead_letter' takes no '\(k)' (it receives every rejected event)")
                }
            }
        } else {
            from = readFrom("sink", name, key, f, role: .sink)
        }
        var when: Predicate?
        if !deadLetter, let node = f?["when"] { when = predicate(node, "'when' of \(what)") }
        var format = DataFormat.json
        if let node = f?["format"], let v = choice(node, "'format' of \(what)", ["json", "text"]) {
            format = DataFormat(rawValue: v) ?? .json
            if deadLetter && format != .json {
                diags.error(node.location, "'format' of 'dead_letter' must be json (a dead letter is a JSON record with the event inside)")
            }
        }
        // The dead letter sink takes everything rejected: a larger default queue, and it never drops.
        var queue = QueueSpec(capacity: deadLetter ? settings.queueCapacity * 4 : settings.queueCapacity)
        if let node = f?["queue"], let q = fields(node, "'queue' of \(what)", allowed: ["capacity", "when_full"]) {
            if let c = q["capacity"], let v = integer(c, "'capacity' in 'queue' of \(what)", min: 1) { queue.capacity = v }
            if let w = q["when_full"], let v = choice(w, "'when_full' in 'queue' of \(what)", ["block", "drop_newest", "dead_letter"]) {
                queue.whenFull = WhenFull(rawValue: v) ?? .block
                if deadLetter && queue.whenFull != .block {
                    diags.error(w.location, "'when_full' in 'queue' of 'dead_letter' must be block (dead letters are never dropped)")
                    queue.whenFull = .block
                }
            }
        }
        let retryNode = f?["retry"]
        lastSuggestions = topSuggestions
        guard let (type, _, body) = typeKey(deadLetter ? "'dead_letter'" : "sink", name, key, f, value,
                                             types: Self.sinkTypes, unsupported: unsupportedTypes)
        else { return nil }
        let inner = "'\(type)' of \(what)"
        var kind: SinkSpec.Kind?
        switch type {
        case "file":
            guard let b = fields(body, inner, allowed: ["path"]) else { return nil }
            if let node = b["path"] {
                if let p = path(node, "'path' in \(inner)") {
                    kind = .file(path: p)
                    fileSinkPaths.append((name, p, node.location))
                }
            } else {
                diags.error(body.location, "missing 'path' in \(inner)")
            }
        case "stdout":
            if fields(body, inner, allowed: []) != nil { kind = .stdout }
        case "stderr":
            if fields(body, inner, allowed: []) != nil { kind = .stderr }
        case "kafka":
            guard let b = fields(body, inner, allowed: ["brokers", "topic", "key", "options"]) else { return nil }
            let brokers = required(b, "brokers", inner, body).flatMap { nonEmptyString($0, "'brokers' in \(inner)") }
            let topic = required(b, "topic", inner, body).flatMap { nonEmptyString($0, "'topic' in \(inner)") }
            let messageKey = b["key"].flatMap { keyTemplate($0, "'key' in \(inner)", requireField: false) }?.description
            let options = b["options"].flatMap { kafkaOptions($0, "'options' in \(inner)") } ?? [:]
            if let brokers, let topic {
                kind = .kafka(KafkaSinkSpec(brokers: brokers, topic: topic, key: messageKey, options: options))
            }
        case "http":
            kind = httpSink(body, inner).map { .http($0) }
        case "memcached":
            kind = memcachedSink(body, inner).map { .memcached($0) }
        default:
            return nil
        }
        guard let kind else { return nil }
        var sink = SinkSpec(name: name, location: key.location, from: from, when: when, format: format, queue: queue, kind: kind)
        if let retryNode {
            guard let r = retry(retryNode, what, default: sink.effectiveRetry) else { return nil }
            sink.retry = r
        }
        return sink
    }

    /// `when`: a Lua expression, or a field map (`{ country: US }`), or `{ match: {...} }`, or `{ udf: module.function }`.
    mutating func predicate(_ node: YAMLNode, _ what: String) -> Predicate? {
        switch node.kind {
        case .scalar:
            guard let e = nonEmptyString(node, what) else { return nil }
            return .lua(expression: e, location: node.location)
        case .mapping(let pairs):
            let keys = pairs.compactMap { $0.key.scalarText }
            if keys.contains("match"), keys.contains("udf"), let second = pairs.last(where: { ["match", "udf"].contains($0.key.scalarText ?? "") }) {
                diags.error(second.key.location, "\(what) takes either 'match' or 'udf', not both")
                return nil
            }
            if pairs.count == 1, let k = pairs[0].key.scalarText {
                if k == "match", pairs[0].value.mappingPairs != nil {
                    return match(pairs[0].value, what).map { .match($0) }
                }
                if k == "udf", pairs[0].value.scalarText != nil {
                    return udfRef(pairs[0].value, "'udf' in \(what)").map { .udf($0) }
                }
            }
            return match(node, what).map { .match($0) }
        case .sequence:
            diags.error(node.location, "expected a Lua expression or a field map for \(what), found a sequence")
            return nil
        }
    }
}
