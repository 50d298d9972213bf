import SluiceCore

/// Generic helpers of the loader: checked mappings, scalars, names, UDF references, field paths, JSON.
extension Loader {
    /// Checks a mapping's keys. `what` names it in messages ("" = the top level). Null counts as an empty mapping.
    mutating func fields(_ node: YAMLNode, _ what: String, allowed: [String], notSupported: [String] = []) -> Fields? {
        if node.isNull { return Fields(location: node.location) }
        guard let pairs = node.mappingPairs else {
            diags.error(node.location, "expected a mapping for \(what.isEmpty ? "the spec" : what), found \(node.kindDescription)")
            return nil
        }
        var out = Fields(location: node.location)
        lastSuggestions = []
        for pair in pairs {
            guard let key = pair.key.scalarText else { continue }  // reported by the reader
            if what.isEmpty && key.hasPrefix("x-") { continue }  // extension keys, e.g. for YAML anchors
            if allowed.contains(key) {
                out.pairs.append(pair)
            } else if notSupported.contains(key) {
                diags.error(pair.key.location, "'\(key)' is not supported yet" + (what.isEmpty ? "" : " (in \(what))"))
            } else {
                let place = what.isEmpty ? "unknown top-level key '\(key)'" : "unknown key '\(key)' in \(what)"
                if let s = Suggest.closest(to: key, among: allowed) {
                    lastSuggestions.append(s)
                    diags.error(pair.key.location, place + " (did you mean '\(s)'?)")
                } else {
                    diags.error(pair.key.location, place)
                }
            }
        }
        return out
    }

    mutating func string(_ node: YAMLNode, _ what: String) -> String? {
        guard let text = node.scalarText, !node.isNull else {
            diags.error(node.location, "expected a string for \(what), found \(node.kindDescription)")
            return nil
        }
        return text
    }

    mutating func nonEmptyString(_ node: YAMLNode, _ what: String) -> String? {
        guard let s = string(node, what) else { return nil }
        if s.trimmingSpaces.isEmpty {
            diags.error(node.location, "\(what) must not be empty")
            return nil
        }
        return s
    }

    /// Integers may be written plain or quoted (`"100"`), since `${VAR}` values are often quoted.
    mutating func integer(_ node: YAMLNode, _ what: String, min: Int) -> Int? {
        guard let text = node.scalarText, !node.isNull, let v = YAMLScalars.parseInt(text.trimmingSpaces) else {
            diags.error(node.location, "expected an integer for \(what), found \(node.kindDescription)")
            return nil
        }
        guard v >= Int64(min) else {
            diags.error(node.location, "\(what) must be at least \(min), found \(v)")
            return nil
        }
        return Int(v)
    }

    mutating func boolean(_ node: YAMLNode, _ what: String) -> Bool? {
        guard let text = node.scalarText, let b = YAMLScalars.parseBool(text) else {
            diags.error(node.location, "expected true or false for \(what), found \(node.kindDescription)")
            return nil
        }
        return b
    }

    mutating func choice(_ node: YAMLNode, _ what: String, _ options: [String]) -> String? {
        guard let text = node.scalarText, !node.isNull, options.contains(text) else {
            let found = node.scalarText.map { "'\($0)'" } ?? node.kindDescription
            let hint = node.scalarText.flatMap { Suggest.closest(to: $0, among: options) }.map { "; did you mean '\($0)'?" } ?? ""
            diags.error(node.location, "invalid value \(found) for \(what) (expected \(Suggest.list(options))\(hint))")
            return nil
        }
        return text
    }

    func isValidName(_ s: String, allowDot: Bool = false) -> Bool {
        guard let f = s.unicodeScalars.first, f != "-", f != "." else { return false }
        return s.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" || (allowDot && $0 == "."))
        }
    }

    /// A required key of a component body; reports it missing at `at`.
    mutating func required(_ f: Fields, _ key: String, _ what: String, _ at: YAMLNode) -> YAMLNode? {
        if let node = f[key] { return node }
        diags.error(at.location, "missing '\(key)' in \(what)")
        return nil
    }

    /// librdkafka options: a flat map of scalar values, passed on as strings.
    mutating func kafkaOptions(_ node: YAMLNode, _ what: String) -> [String: String]? {
        guard let pairs = node.mappingPairs else {
            if node.isNull { return [:] }
            diags.error(node.location, "expected a mapping for \(what), found \(node.kindDescription)")
            return nil
        }
        var out: [String: String] = [:]
        for pair in pairs {
            guard let k = pair.key.scalarText else { continue }
            guard let v = pair.value.scalarText, !pair.value.isNull else {
                diags.error(pair.value.location, "expected a scalar value for '\(k)' in \(what), found \(pair.value.kindDescription)")
                continue
            }
            out[k] = v
        }
        return out
    }

    /// A duration (`250ms`, `10s`, `5m`, `1h`, `1d`) in milliseconds; `positive` rejects zero.
    mutating func duration(_ node: YAMLNode, _ what: String, positive: Bool) -> Int64? {
        guard let text = node.scalarText, !node.isNull, let ms = YAMLScalars.parseDurationMillis(text) else {
            diags.error(node.location, "invalid duration \(node.kindDescription) for \(what) (expected e.g. 250ms, 10s, 5m or 1h)")
            return nil
        }
        if positive && ms <= 0 {
            diags.error(node.location, "\(what) must be greater than 0, found \(text)")
            return nil
        }
        return ms
    }

    mutating func udfRef(_ node: YAMLNode, _ what: String) -> UDFRef? {
        guard let text = string(node, what) else { return nil }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ EnvSubstitution.isValidName(String($0)) }) else {
            diags.error(node.location, "invalid udf reference '\(text)' for \(what) (expected 'module.function', e.g. 'enrich.add_title')")
            return nil
        }
        return UDFRef(module: String(parts[0]), function: String(parts[1]), location: node.location)
    }

    mutating func fieldPath(_ text: String, at location: SourceLocation, _ what: String) -> [String]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !text.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else {
            diags.error(location, "invalid field path '\(text)' for \(what) (expected names separated by '.', e.g. 'client.os')")
            return nil
        }
        return parts
    }

    mutating func path(_ node: YAMLNode, _ what: String) -> String? {
        guard let p = nonEmptyString(node, what) else { return nil }
        return Paths.resolve(p, against: directory)
    }

    /// A scalar as JSON: plain scalars typed (null, bool, int, double, string); quoted/block scalars are strings.
    mutating func json(_ node: YAMLNode) -> JSONValue? {
        switch node.kind {
        case .scalar(let text, let style):
            switch node.tag {
            case nil:
                return style == .plain ? YAMLScalars.resolvePlain(text) : .string(text)
            case YAMLTag.str?, YAMLTag.nonSpecific?:
                return .string(text)
            case YAMLTag.null? where YAMLScalars.isNullText(text):
                return .null
            case YAMLTag.bool?:
                if let b = YAMLScalars.parseBool(text) { return .bool(b) }
            case YAMLTag.int?:
                if let i = YAMLScalars.parseInt(text) { return .int(i) }
            case YAMLTag.float?:
                if let i = YAMLScalars.parseInt(text) { return .double(Double(i)) }
                if let d = YAMLScalars.parseFloat(text) { return .double(d) }
            default:
                diags.error(node.location, "unsupported tag '\(node.tag!)'")
                return nil
            }
            diags.error(node.location, "'\(text)' is not a valid \(Self.tagName(node.tag!))")
            return nil
        case .sequence(let items):
            var out: [JSONValue] = []
            var ok = true
            for item in items { if let v = json(item) { out.append(v) } else { ok = false } }
            return ok ? .array(out) : nil
        case .mapping(let pairs):
            var out: [(String, JSONValue)] = []
            var ok = true
            for pair in pairs {
                guard let k = pair.key.scalarText else { ok = false; continue }
                if let v = json(pair.value) { out.append((k, v)) } else { ok = false }
            }
            return ok ? .object(out) : nil
        }
    }

    static func tagName(_ tag: String) -> String {
        if tag.hasPrefix("tag:yaml.org,2002:") { return "!!" + tag.dropFirst("tag:yaml.org,2002:".count) }
        return tag
    }
}
