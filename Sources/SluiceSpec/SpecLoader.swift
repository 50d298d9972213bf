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
            throw SpecErrors(diagnostics: loader.diags.sorted, partial: spec)
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
    /// The first `stdin` source (a second one is an error).
    var firstStdin: (name: String, location: SourceLocation)?
    /// Paths of file sources and file sinks (with the location of the path), to catch a pipeline reading its own output.
    var fileSourcePaths: [(name: String, path: String, location: SourceLocation)] = []
    var fileSinkPaths: [(name: String, path: String, location: SourceLocation)] = []
    /// Suggestions made for unknown keys by the last `fields` call (so "no type key" is not reported on top of a typo).
    var lastSuggestions: [String] = []

    init(file: String, directory: String) { self.file = file; self.directory = directory }

    static let topKeys = ["pipeline", "udfs", "sources", "transforms", "sinks", "dead_letter", "settings", "tests", "lookups"]
    static let sourceTypes = ["file", "stdin", "generate", "kafka"]
    static let transformTypes = ["filter", "map", "flat_map", "project", "join", "dedup", "aggregate"]
    static let sinkTypes = ["file", "stdout", "stderr", "kafka", "http", "memcached"]
    static let matchOps = ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists"]

    // MARK: - Whole spec

    mutating func build(_ root: YAMLNode) -> PipelineSpec? {
        guard let top = fields(root, "", allowed: Self.topKeys) else { return nil }

        var name = Paths.basename(file)
        for ext in [".yaml", ".yml"] where name.hasSuffix(ext) { name = String(name.dropLast(ext.count)) }
        if let node = top["pipeline"], let n = string(node, "'pipeline'") {
            if isValidName(n, allowDot: true) { name = n } else {
                diags.error(node.location, "invalid pipeline name '\(n)' (use letters, digits, '.', '_' and '-')")
            }
        }

        var settings = Settings()
        if let node = top["settings"] { settings = parseSettings(node, pipeline: name) }
        let udfs = parseUDFs(top["udfs"])
        let lookups = parseLookups(top["lookups"])

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
        checkFileLoops()
        checkTextSources(sources: sources, transforms: transforms, sinks: sinks)

        var tests: [TestCase] = []
        if let node = top["tests"] {
            tests = parseTests(node, sources: sources, sinks: sinks)
        }

        return PipelineSpec(name: name, file: file, directory: directory, udfs: udfs, sources: sources,
                            transforms: transforms, sinks: sinks, deadLetter: deadLetter, settings: settings, tests: tests, lookups: lookups)
    }
}
