import SluiceCore

/// `aggregate:` — windows, reducers and emit modes.
extension Loader {
    /// `aggregate: { from, key, window, reduce, emit }`; emit defaults to on_window_close, or on_change for `window: none`.
    mutating func parseAggregate(_ name: String, _ key: YAMLNode, _ f: Fields, _ typeKey: YAMLNode, _ body: YAMLNode) -> AggregateSpec? {
        let inner = "'aggregate' of transform '\(name)'"
        let b = fields(body, inner, allowed: ["from", "key", "window", "reduce", "emit"])
        let input = keyedFrom(name, key, f, b, type: "aggregate")
        guard let b else { return nil }
        let template = required(b, "key", inner, typeKey).flatMap { keyTemplate($0, "'key' in \(inner)") }
        var window: WindowSpec?
        if let node = b["window"] {
            window = windowSpec(node, "'window' in \(inner)")
        } else {
            diags.error(typeKey.location, "missing 'window' in \(inner) (e.g. window: { tumbling: 1m } or window: none)")
        }
        let reduce = required(b, "reduce", inner, typeKey).flatMap { reduceSpec($0, "'reduce' in \(inner)") }
        var emit: AggregateSpec.Emit? = window.map { $0 == .none ? .onChange : .onWindowClose }
        if let node = b["emit"] {
            emit = aggregateEmit(node, "'emit' in \(inner)", window: window)
        }
        guard let input, let template, let keyNode = b["key"], let window, let reduce, let emit else { return nil }
        return AggregateSpec(input: KeyedInput(from: input, key: template, location: keyNode.location),
                             window: window, reduce: reduce, emit: emit)
    }

    /// `{ tumbling: D }`, `{ sliding: D, every: D }`, `{ session: D }` or `none`.
    mutating func windowSpec(_ node: YAMLNode, _ what: String) -> WindowSpec? {
        let expected = "expected { tumbling: D }, { sliding: D, every: D }, { session: D } or none"
        if node.scalarText == "none", !node.isNull { return WindowSpec.none }
        guard node.mappingPairs != nil, let w = fields(node, what, allowed: ["tumbling", "sliding", "every", "session"]) else {
            if node.mappingPairs == nil {
                let found = node.scalarText.map { "'\($0)'" } ?? node.kindDescription
                diags.error(node.location, "invalid window \(found) for \(what) (\(expected))")
            }
            return nil
        }
        let kinds = ["tumbling", "sliding", "session"].filter { w.has($0) }
        if kinds.count > 1, let second = w.keyNode(kinds[1]) {
            diags.error(second.location, "\(what) takes one of 'tumbling', 'sliding' or 'session', not both '\(kinds[0])' and '\(kinds[1])'")
            return nil
        }
        guard let kind = kinds.first, let sizeNode = w[kind] else {
            if w.pairs.isEmpty || !w.has("every") {
                if lastSuggestions.isEmpty { diags.error(node.location, "\(what) needs 'tumbling', 'sliding' or 'session' (\(expected))") }
            } else {
                diags.error(node.location, "\(what) has 'every' but no 'sliding' size (expected { sliding: D, every: D })")
            }
            return nil
        }
        if kind != "sliding", let e = w.keyNode("every") {
            diags.error(e.location, "'every' in \(what) applies only to sliding windows")
            return nil
        }
        guard let size = duration(sizeNode, "'\(kind)' in \(what)", positive: true) else { return nil }
        switch kind {
        case "tumbling": return .tumbling(size: size)
        case "session": return .session(gap: size)
        default:
            guard let everyNode = w["every"] else {
                diags.error(node.location, "missing 'every' in \(what) (a sliding window is { sliding: SIZE, every: STEP })")
                return nil
            }
            guard let every = duration(everyNode, "'every' in \(what)", positive: true) else { return nil }
            if every > size {
                diags.error(everyNode.location, "'every' in \(what) (\(everyNode.scalarText ?? "")) must not exceed the window size (\(sizeNode.scalarText ?? ""))")
                return nil
            }
            return .sliding(size: size, every: every)
        }
    }

    /// `{ OUT: count | { OP: PATH }, ... }` or `{ udf: module.function }`.
    mutating func reduceSpec(_ node: YAMLNode, _ what: String) -> AggregateSpec.Reduce? {
        guard let pairs = node.mappingPairs else {
            diags.error(node.location, "expected a mapping of output field to reducer (or { udf: module.function }) for \(what), found \(node.kindDescription)")
            return nil
        }
        if let udf = pairs.first(where: { $0.key.scalarText == "udf" }) {
            if pairs.count > 1 {
                diags.error(udf.key.location, "a 'udf' reducer must be alone in \(what) (it replaces the declarative reducers)")
                return nil
            }
            return udfRef(udf.value, "'udf' in \(what)").map { .udf($0) }
        }
        if pairs.isEmpty {
            diags.error(node.location, "\(what) has no reducers (e.g. { plays: count, watched_ms: { sum: duration_ms } })")
            return nil
        }
        let ops = ["count", "sum", "min", "max", "avg", "first", "last", "count_distinct", "collect"]
        let reserved = ["key", "window_start", "window_end"]
        var out: [ReducerSpec] = []
        var ok = true
        for pair in pairs {
            let output = pair.key.scalarText ?? ""
            let field = "output field '\(output)' in \(what)"
            if reserved.contains(output) {
                diags.error(pair.key.location, "output field '\(output)' in \(what) clashes with the '\(output)' field of the output event")
                ok = false
                continue
            }
            let v = pair.value
            if let text = v.scalarText, !v.isNull {
                if text == "count" { out.append(ReducerSpec(output: output, op: .count)); continue }
                if ops.contains(text) {
                    diags.error(v.location, "'\(text)' needs a field path for \(field) (e.g. { \(text): duration_ms })")
                } else {
                    diags.error(v.location, "invalid reducer '\(text)' for \(field) (expected count or { OP: PATH } with OP one of \(Suggest.list(Array(ops.dropFirst()))))" + Suggest.hint(for: text, among: ops))
                }
                ok = false
                continue
            }
            guard let opPairs = v.mappingPairs, opPairs.count == 1, let opName = opPairs[0].key.scalarText else {
                diags.error(v.location, "expected count or { OP: PATH } (one operation) for \(field), found \(v.mappingPairs.map { $0.isEmpty ? "an empty mapping" : "\($0.count) operations" } ?? v.kindDescription)")
                ok = false
                continue
            }
            let opNode = opPairs[0]
            if opName == "count" {
                diags.error(opNode.key.location, "'count' takes no field path in \(field) (write '\(output): count')")
                ok = false
                continue
            }
            guard let op = ReducerSpec.Op(rawValue: opName) else {
                diags.error(opNode.key.location, "unknown operation '\(opName)' for \(field)" + Suggest.hint(for: opName, among: ops))
                ok = false
                continue
            }
            guard let text = string(opNode.value, "'\(opName)' of \(field)"),
                  let path = fieldPath(text, at: opNode.value.location, "'\(opName)' of \(field)") else { ok = false; continue }
            out.append(ReducerSpec(output: output, op: op, path: path))
        }
        return ok ? .reducers(out) : nil
    }

    /// `on_window_close` (windows only), `on_change` or `{ every: D }`.
    mutating func aggregateEmit(_ node: YAMLNode, _ what: String, window: WindowSpec?) -> AggregateSpec.Emit? {
        if node.mappingPairs != nil {
            guard let e = fields(node, what, allowed: ["every"]) else { return nil }
            guard let every = e["every"] else {
                if lastSuggestions.isEmpty { diags.error(node.location, "missing 'every' in \(what) (e.g. emit: { every: 5s })") }
                return nil
            }
            return duration(every, "'every' in \(what)", positive: true).map { .every($0) }
        }
        let options = ["on_window_close", "on_change"]
        guard let text = node.scalarText, !node.isNull, options.contains(text) else {
            let found = node.scalarText.map { "'\($0)'" } ?? node.kindDescription
            let hint = node.scalarText.flatMap { Suggest.closest(to: $0, among: options) }.map { "; did you mean '\($0)'?" } ?? ""
            diags.error(node.location, "invalid value \(found) for \(what) (expected on_window_close, on_change or { every: D }\(hint))")
            return nil
        }
        if text == "on_change" { return .onChange }
        if window == WindowSpec.none {
            diags.error(node.location, "\(what) cannot be on_window_close with 'window: none' (there is no window to close; use on_change or { every: D })")
            return nil
        }
        return .onWindowClose
    }
}
