import SluiceCore

/// Loads a pipeline spec: YAML (bounded) -> `${VAR}` substitution -> typed `PipelineSpec` -> graph validation.
/// Every problem found is reported (`SpecErrors.diagnostics`, in file order), not only the first.
public enum SpecLoader {
    /// Reads and loads the spec at `path` (relative paths resolve against the working directory).
    /// Diagnostics name the file as given in `path`.
    public static func load(path: String, environment: [String: String]) throws(SpecErrors) -> PipelineSpec {
        let absolute = Paths.resolve(path, against: Paths.currentDirectory())
        switch Paths.readFile(absolute, limit: YAMLReader.maxBytes) {
        case .success(let bytes):
            return try load(bytes: bytes, file: path, directory: Paths.dirname(absolute), environment: environment)
        case .failure(.tooLarge(let size)):
            throw SpecErrors(diagnostics: [Diagnostic(location: SourceLocation(file: path, line: 0, column: 0),
                                                      message: "file is too large (\(size) bytes; the limit is 1 MiB)")])
        case .failure(.system(let reason)):
            throw SpecErrors(diagnostics: [Diagnostic(location: SourceLocation(file: path, line: 0, column: 0),
                                                      message: "cannot read the spec: \(reason)")])
        }
    }

    /// Loads spec text. `file` names it in diagnostics; `directory` is where relative paths resolve
    /// (made absolute against the working directory if needed).
    public static func load(text: String, file: String, directory: String,
                            environment: [String: String]) throws(SpecErrors) -> PipelineSpec {
        try load(bytes: Array(text.utf8), file: file, directory: directory, environment: environment)
    }

    public static func load(bytes: [UInt8], file: String, directory: String,
                            environment: [String: String]) throws(SpecErrors) -> PipelineSpec {
        let (root, yamlProblems) = YAMLReader.read(bytes, file: file)
        var loader = Loader(file: file, directory: Paths.resolve(".", against: directory))
        loader.diags.append(contentsOf: yamlProblems)
        guard let root else {
            if yamlProblems.isEmpty {
                loader.diags.error(SourceLocation(file: file, line: 0, column: 0), "the spec is empty")
            }
            throw SpecErrors(diagnostics: loader.diags.sorted)
        }
        let substituted = EnvSubstitution.apply(root, environment: environment, diagnostics: &loader.diags)
        let spec = loader.build(substituted)
        if !loader.diags.isEmpty || spec == nil {
            throw SpecErrors(diagnostics: loader.diags.sorted)
        }
        return spec!
    }
}

/// A mapping whose keys were checked against the allowed set.
struct Fields {
    var location: SourceLocation
    /// Allowed keys present, in document order.
    var pairs: [YAMLPair] = []

    subscript(_ key: String) -> YAMLNode? { pairs.first { $0.key.scalarText == key }?.value }
    func keyNode(_ key: String) -> YAMLNode? { pairs.first { $0.key.scalarText == key }?.key }
    func has(_ key: String) -> Bool { keyNode(key) != nil }
}

/// One component as a graph node, recorded even when its body has errors.
struct GraphNode {
    enum Role { case source, transform, sink }
    var name: String
    var role: Role
    var location: SourceLocation
    var from: [(name: String, location: SourceLocation)]
    /// False if `from` could not be read (graph checks that depend on it are skipped).
    var fromKnown: Bool

    var roleName: String {
        switch role {
        case .source: return "source"
        case .transform: return "transform"
        case .sink: return "sink"
        }
    }
}

struct Loader {
    var diags = DiagnosticSink()
    let file: String
    let directory: String
    var graph: [GraphNode] = []
    var declared: [String: (role: GraphNode.Role, location: SourceLocation)] = [:]
    /// Suggestions made for unknown keys by the last `fields` call (so "no type key" is not reported on top of a typo).
    var lastSuggestions: [String] = []

    init(file: String, directory: String) { self.file = file; self.directory = directory }

    static let topKeys = ["pipeline", "udfs", "sources", "transforms", "sinks", "dead_letter", "settings", "tests"]
    static let sourceTypes = ["file", "stdin", "generate", "kafka"]
    static let transformTypes = ["filter", "map", "flat_map", "project"]
    static let sinkTypes = ["file", "stdout", "stderr", "kafka"]
    static let matchOps = ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"]

    // MARK: - Whole spec

    mutating func build(_ root: YAMLNode) -> PipelineSpec? {
        guard let top = fields(root, "", allowed: Self.topKeys, notSupported: ["lookups"]) else { return nil }

        var name = Paths.basename(file)
        for ext in [".yaml", ".yml"] where name.hasSuffix(ext) { name = String(name.dropLast(ext.count)) }
        if let node = top["pipeline"], let n = string(node, "'pipeline'") {
            if isValidName(n, allowDot: true) { name = n } else {
                diags.error(node.location, "invalid pipeline name '\(n)' (use letters, digits, '.', '_' and '-')")
            }
        }

        var settings = Settings()
        if let node = top["settings"] { settings = parseSettings(node) }
        let udfs = parseUDFs(top["udfs"])

        var sources: [SourceSpec] = []
        for (key, value) in section(top, "sources", role: .source) {
            if let s = parseSource(key, value) { sources.append(s) }
        }
        var transforms: [TransformSpec] = []
        for (key, value) in section(top, "transforms", role: .transform) {
            if let t = parseTransform(key, value) { transforms.append(t) }
        }
        var sinks: [SinkSpec] = []
        for (key, value) in section(top, "sinks", role: .sink) {
            if let s = parseSink(key, value, settings: settings, deadLetter: false) { sinks.append(s) }
        }
        if top["sources"] == nil {
            diags.error(root.location, "missing 'sources' (a pipeline needs at least one source)")
        }
        if top["sinks"] == nil {
            diags.error(root.location, "missing 'sinks' (a pipeline needs at least one sink)")
        }
        var deadLetter: SinkSpec?
        if let node = top["dead_letter"], !node.isNull, let key = top.keyNode("dead_letter") {
            deadLetter = parseSink(key, node, settings: settings, deadLetter: true)
        }
        validateGraph()

        var tests: [TestCase] = []
        if let node = top["tests"] {
            tests = parseTests(node, sources: sources, sinks: sinks)
        }

        return PipelineSpec(name: name, file: file, directory: directory, udfs: udfs, sources: sources,
                            transforms: transforms, sinks: sinks, deadLetter: deadLetter, settings: settings, tests: tests)
    }

    // MARK: - Generic helpers

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

    // MARK: - Sections and components

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

    // MARK: - Sources

    mutating func parseSource(_ key: YAMLNode, _ value: YAMLNode) -> SourceSpec? {
        let name = key.scalarText ?? ""
        let what = "source '\(name)'"
        let f = fields(value, what, allowed: Self.sourceTypes + ["format"], notSupported: ["time"])
        graph.append(GraphNode(name: name, role: .source, location: key.location, from: [], fromKnown: true))
        var format = DataFormat.json
        if let node = f?["format"], let v = choice(node, "'format' of \(what)", ["json", "text"]) {
            format = DataFormat(rawValue: v) ?? .json
        }
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
                if let p = path(node, "'path' in \(inner)") { kind = .file(path: p, follow: follow) }
            } else {
                diags.error(typeKey.location, "missing 'path' in \(inner)")
            }
        case "stdin":
            if fields(body, inner, allowed: []) != nil { kind = .stdin }
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
        guard let kind else { return nil }
        return SourceSpec(name: name, location: key.location, format: format, kind: kind)
    }

    // MARK: - Transforms

    mutating func parseTransform(_ key: YAMLNode, _ value: YAMLNode) -> TransformSpec? {
        let name = key.scalarText ?? ""
        let what = "transform '\(name)'"
        let f = fields(value, what, allowed: Self.transformTypes + ["from"], notSupported: ["join", "dedup", "aggregate"])
        let from = readFrom("transform", name, key, f, role: .transform)
        guard let (type, typeKey, body) = typeKey("transform", name, key, f, value, types: Self.transformTypes,
                                                  unsupported: ["join", "dedup", "aggregate"])
        else { return nil }
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

    // MARK: - Match

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

    // MARK: - Sinks

    mutating func parseSink(_ key: YAMLNode, _ value: YAMLNode, settings: Settings, deadLetter: Bool) -> SinkSpec? {
        let name = deadLetter ? "dead_letter" : (key.scalarText ?? "")
        let what = deadLetter ? "'dead_letter'" : "sink '\(name)'"
        let unsupportedTypes = ["http", "memcached"]
        let f = fields(value, what, allowed: Self.sinkTypes + ["from", "when", "format", "queue"],
                       notSupported: unsupportedTypes + ["retry"])
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
        }
        var queue = QueueSpec(capacity: settings.queueCapacity)
        if let node = f?["queue"], let q = fields(node, "'queue' of \(what)", allowed: ["capacity", "when_full"]) {
            if let c = q["capacity"], let v = integer(c, "'capacity' in 'queue' of \(what)", min: 1) { queue.capacity = v }
            if let w = q["when_full"], let v = choice(w, "'when_full' in 'queue' of \(what)", ["block", "drop_newest", "dead_letter"]) {
                queue.whenFull = WhenFull(rawValue: v) ?? .block
            }
        }
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
                if let p = path(node, "'path' in \(inner)") { kind = .file(path: p) }
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
            let keyTemplate = b["key"].flatMap { nonEmptyString($0, "'key' in \(inner)") }
            let options = b["options"].flatMap { kafkaOptions($0, "'options' in \(inner)") } ?? [:]
            if let brokers, let topic {
                kind = .kafka(KafkaSinkSpec(brokers: brokers, topic: topic, key: keyTemplate, options: options))
            }
        default:
            return nil
        }
        guard let kind else { return nil }
        return SinkSpec(name: name, location: key.location, from: from, when: when, format: format, queue: queue, kind: kind)
    }

    /// `when`: a Lua expression, or a field map (`{ country: US }`), or `{ match: {...} }`, or `{ udf: module.function }`.
    mutating func predicate(_ node: YAMLNode, _ what: String) -> Predicate? {
        switch node.kind {
        case .scalar:
            guard let e = nonEmptyString(node, what) else { return nil }
            return .lua(expression: e, location: node.location)
        case .mapping(let pairs):
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

    // MARK: - udfs, settings

    mutating func parseUDFs(_ node: YAMLNode?) -> UDFSettings {
        var u = UDFSettings(dir: Paths.resolve("../udfs", against: directory))
        guard let node, let f = fields(node, "'udfs'", allowed: ["dir", "reload", "limits"]) else { return u }
        if let d = f["dir"], let p = path(d, "'dir' in 'udfs'") { u.dir = p }
        if let r = f["reload"], let v = choice(r, "'reload' in 'udfs'", ["watch", "signal", "off"]) {
            u.reload = ReloadMode(rawValue: v) ?? .off
        }
        if let l = f["limits"], let lf = fields(l, "'limits' in 'udfs'", allowed: ["instructions", "memory"]) {
            if let n = lf["instructions"], let v = integer(n, "'instructions' in 'limits'", min: 1) { u.instructionLimit = v }
            if let m = lf["memory"] {
                if let text = m.scalarText, !m.isNull, let v = YAMLScalars.parseSize(text), v > 0 { u.memoryLimit = v } else {
                    diags.error(m.location, "invalid size \(m.kindDescription) for 'memory' in 'limits' (expected e.g. 64MiB, 512KiB or a number of bytes)")
                }
            }
        }
        return u
    }

    mutating func parseSettings(_ node: YAMLNode) -> Settings {
        var s = Settings()
        guard let f = fields(node, "'settings'", allowed: ["queue_capacity", "batch_size", "workers", "admin"],
                             notSupported: ["checkpoint"]) else { return s }
        if let a = f["admin"], let af = fields(a, "'admin' in 'settings'", allowed: ["listen"]) {
            if let l = af["listen"], let text = nonEmptyString(l, "'listen' in 'admin'") {
                let parts = text.split(separator: ":", omittingEmptySubsequences: false)
                if parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port), !parts[0].isEmpty {
                    s.admin = AdminSpec(host: String(parts[0]), port: port)
                } else {
                    diags.error(l.location, "invalid address '\(text)' for 'listen' in 'admin' (expected HOST:PORT, e.g. 127.0.0.1:9464)")
                }
            } else if af["listen"] == nil {
                diags.error(a.location, "missing 'listen' in 'admin' (e.g. listen: 127.0.0.1:9464)")
            }
        }
        if let n = f["queue_capacity"], let v = integer(n, "'queue_capacity' in 'settings'", min: 1) { s.queueCapacity = v }
        if let n = f["batch_size"], let v = integer(n, "'batch_size' in 'settings'", min: 1) { s.batchSize = v }
        if let n = f["workers"] {
            if n.scalarText == "auto" { s.workers = nil } else if let text = n.scalarText, !n.isNull, YAMLScalars.parseInt(text) != nil {
                s.workers = integer(n, "'workers' in 'settings'", min: 1)
            } else {
                diags.error(n.location, "invalid value \(n.kindDescription) for 'workers' in 'settings' (expected auto or a number)")
            }
        }
        return s
    }

    // MARK: - Graph

    mutating func validateGraph() {
        let byName = Dictionary(graph.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let readable = graph.filter { $0.role != .sink }.map(\.name)
        var allKnown = true
        // Edges upstream -> downstream, only for references that resolve to a source or transform.
        var downstream: [String: [String]] = [:]
        for node in graph {
            if !node.fromKnown { allKnown = false }
            for (up, at) in node.from {
                guard let d = declared[up] else {
                    diags.error(at, "unknown component '\(up)' in 'from' of \(node.roleName) '\(node.name)'" + Suggest.hint(for: up, among: readable))
                    allKnown = false
                    continue
                }
                if d.role == .sink {
                    diags.error(at, "\(node.roleName) '\(node.name)' cannot read from sink '\(up)'")
                    continue
                }
                downstream[up, default: []].append(node.name)
            }
        }

        // Cycles: Kahn's algorithm over transforms; what remains is in a cycle or downstream of one.
        let transforms = graph.filter { $0.role == .transform }
        var indegree: [String: Int] = [:]
        for t in transforms {
            indegree[t.name] = t.from.filter { byName[$0.name]?.role == .transform }.count
        }
        var ready = transforms.filter { indegree[$0.name] == 0 }.map(\.name)
        var done = Set<String>()
        while let n = ready.popLast() {
            done.insert(n)
            for d in downstream[n] ?? [] where byName[d]?.role == .transform {
                indegree[d, default: 0] -= 1
                if indegree[d] == 0 { ready.append(d) }
            }
        }
        var inCycle = Set<String>()
        var reported = Set<String>()
        let order = Dictionary(transforms.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        for t in transforms where !done.contains(t.name) && !reported.contains(t.name) {
            // Walk upstream inside the remaining set until a node repeats.
            var path: [String] = [t.name]
            var index: [String: Int] = [t.name: 0]
            var current = t.name
            var hitReported = false
            while true {
                guard let next = byName[current]?.from.first(where: { byName[$0.name]?.role == .transform && !done.contains($0.name) })?.name
                else { hitReported = true; break }
                if reported.contains(next) { hitReported = true; break }
                if let i = index[next] {
                    path = Array(path[i...])
                    break
                }
                index[next] = path.count
                path.append(next)
                current = next
            }
            for n in path { reported.insert(n) }
            if hitReported { continue }
            // `path` lists the cycle against the data flow; report it along the flow, starting at the first in file order.
            var cycle = Array(path.reversed())
            if let start = cycle.indices.min(by: { order[cycle[$0]]! < order[cycle[$1]]! }) {
                cycle = Array(cycle[start...] + cycle[..<start])
            }
            inCycle.formUnion(cycle)
            let first = byName[cycle[0]]!
            diags.error(first.location, "cycle between transforms: " + (cycle + [cycle[0]]).joined(separator: " -> "))
        }

        guard allKnown else { return }
        // Reachability to a sink (walk upstream from every sink).
        var reaches = Set<String>()
        var stack = graph.filter { $0.role == .sink }.map(\.name)
        while let n = stack.popLast() {
            guard reaches.insert(n).inserted else { continue }
            for (up, _) in byName[n]?.from ?? [] where !reaches.contains(up) { stack.append(up) }
        }
        for node in graph {
            switch node.role {
            case .source where downstream[node.name] == nil:
                diags.error(node.location, "source '\(node.name)' is not used (no transform or sink reads from it)")
            case .transform where !reaches.contains(node.name) && !inCycle.contains(node.name):
                diags.error(node.location, "the output of transform '\(node.name)' reaches no sink")
            default:
                break
            }
        }
    }

    // MARK: - Tests

    mutating func parseTests(_ node: YAMLNode, sources: [SourceSpec], sinks: [SinkSpec]) -> [TestCase] {
        if node.isNull { return [] }
        guard let items = node.sequenceItems else {
            diags.error(node.location, "expected a list of tests for 'tests', found \(node.kindDescription)")
            return []
        }
        let sourceNames = graph.filter { $0.role == .source }.map(\.name)
        let sinkNames = graph.filter { $0.role == .sink }.map(\.name) + ["dead_letter"]
        var out: [TestCase] = []
        var names: [String: SourceLocation] = [:]
        let sourceFormats = Dictionary(sources.map { ($0.name, $0.format) }, uniquingKeysWith: { a, _ in a })
        let sinkFormats = Dictionary(sinks.map { ($0.name, $0.format) }, uniquingKeysWith: { a, _ in a })
        for (i, item) in items.enumerated() {
            var what = "test #\(i + 1)"
            if let n = item.mappingPairs?.first(where: { $0.key.scalarText == "name" })?.value.scalarText { what = "test '\(n)'" }
            guard let f = fields(item, what, allowed: ["name", "input", "expect"]) else { continue }
            var ok = true
            var name = ""
            if let n = f["name"] {
                if let s = nonEmptyString(n, "'name' of \(what)") {
                    name = s
                    if let first = names[s] {
                        diags.error(n.location, "duplicate test name '\(s)' (first at line \(first.line), column \(first.column))")
                    } else { names[s] = n.location }
                } else { ok = false }
            } else {
                diags.error(item.location, "missing 'name' in \(what)")
                ok = false
            }
            var input: [(String, [JSONValue])] = []
            if let n = f["input"] {
                let e = testEvents(n, "'input' of \(what)", names: sourceNames, role: "source")
                if e == nil { ok = false }
                for (component, events, nodes) in e ?? [] {
                    let format = sourceFormats[component] ?? .json
                    var converted: [JSONValue] = []
                    for (event, node) in zip(events, nodes) {
                        switch (format, event) {
                        case (.json, .object): converted.append(event)
                        case (.json, _):
                            diags.error(node.location, "expected an event (a mapping) in input '\(component)' of \(what), found \(node.kindDescription)")
                            ok = false
                        case (.text, _):
                            if let t = node.scalarText { converted.append(.string(t)) } else {
                                diags.error(node.location, "expected a line of text in input '\(component)' of \(what) (source '\(component)' has format: text), found \(node.kindDescription)")
                                ok = false
                            }
                        }
                    }
                    input.append((component, converted))
                }
            } else {
                diags.error(item.location, "missing 'input' in \(what)")
                ok = false
            }
            var expect: [(String, [JSONValue])] = []
            if let n = f["expect"] {
                let e = testEvents(n, "'expect' of \(what)", names: sinkNames, role: "sink")
                if e == nil { ok = false }
                for (component, events, nodes) in e ?? [] {
                    let format = sinkFormats[component] ?? .json
                    if format == .text {
                        expect.append((component, zip(events, nodes).map { ev, node in node.scalarText.map(JSONValue.string) ?? ev }))
                    } else {
                        expect.append((component, events))
                    }
                }
            } else {
                diags.error(item.location, "missing 'expect' in \(what)")
                ok = false
            }
            if ok { out.append(TestCase(name: name, location: item.location, input: input, expect: expect)) }
        }
        return out
    }

    /// `{ component: [events...] }` with names checked against `names`.
    mutating func testEvents(_ node: YAMLNode, _ what: String, names: [String], role: String) -> [(String, [JSONValue], [YAMLNode])]? {
        guard let pairs = node.mappingPairs else {
            diags.error(node.location, "expected a mapping of \(role) name to events for \(what), found \(node.kindDescription)")
            return nil
        }
        var out: [(String, [JSONValue], [YAMLNode])] = []
        var ok = true
        let known = Set(names)
        for pair in pairs {
            let component = pair.key.scalarText ?? ""
            if !known.contains(component) {
                diags.error(pair.key.location, "unknown \(role) '\(component)' in \(what)" + Suggest.hint(for: component, among: names))
                ok = false
                continue
            }
            let items: [YAMLNode]
            if pair.value.isNull { items = [] } else if let s = pair.value.sequenceItems { items = s } else {
                diags.error(pair.value.location, "expected a list of events for '\(component)' in \(what), found \(pair.value.kindDescription)")
                ok = false
                continue
            }
            var events: [JSONValue] = []
            for item in items {
                if let v = json(item) { events.append(v) } else { ok = false }
            }
            out.append((component, events, items))
        }
        return ok ? out : nil
    }
}
