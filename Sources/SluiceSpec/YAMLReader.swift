import CYaml

/// Reads YAML into a `YAMLNode` tree using libyaml's event API, with limits for hostile input.
///
/// - documents larger than `maxBytes` are refused before parsing;
/// - nesting deeper than `maxDepth` stops the parse at the offending `[`/`{`/indent;
/// - aliases may expand to at most `maxAliasNodes` nodes in total (billion laughs);
/// - duplicate mapping keys are errors; only one document per file.
public enum YAMLReader {
    public static let maxBytes = 1 << 20
    public static let maxDepth = 64
    public static let maxAliasNodes = 10_000

    /// Parses `bytes`. Returns the root node (nil for an empty document) or the problems found.
    /// Fatal problems (syntax, limits) stop the parse; duplicate keys are collected and parsing continues.
    public static func read(_ bytes: [UInt8], file: String) -> (root: YAMLNode?, diagnostics: [Diagnostic]) {
        if bytes.count > maxBytes {
            return (nil, [Diagnostic(location: SourceLocation(file: file, line: 0, column: 0),
                                     message: "file is too large (\(bytes.count) bytes; the limit is 1 MiB)")])
        }
        if bytes.isEmpty { return (nil, []) }
        var state = ReaderState(file: file, bytes: bytes)
        bytes.withUnsafeBufferPointer { buf in
            state.run(buf)
        }
        return (state.root, state.diagnostics)
    }
}

private struct ReaderState {
    let file: String
    let bytes: [UInt8]
    var root: YAMLNode?
    var diagnostics: [Diagnostic] = []
    var anchors: [String: YAMLNode] = [:]
    var aliasNodes = 0
    var stack: [Frame] = []
    var documents = 0

    struct Frame {
        var isMapping: Bool
        var location: SourceLocation
        var tag: String?
        var anchor: String?
        var items: [YAMLNode] = []
        var pairs: [YAMLPair] = []
        var pendingKey: YAMLNode?
        var seenKeys: [String: SourceLocation] = [:]
        /// Indexes into `pairs` of `<<` merge entries.
        var hasMerge = false
    }

    init(file: String, bytes: [UInt8]) { self.file = file; self.bytes = bytes }

    func loc(_ mark: yaml_mark_t) -> SourceLocation {
        SourceLocation(file: file, line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }

    mutating func fail(_ location: SourceLocation, _ message: String) {
        diagnostics.append(Diagnostic(location: location, message: message))
        root = nil
    }

    static func string(_ p: UnsafeMutablePointer<yaml_char_t>?, _ length: Int? = nil) -> String? {
        guard let p else { return nil }
        guard let n = length else { return String(cString: UnsafePointer(p)) }
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// Runs the parse; returns when the stream ends or on the first fatal error.
    mutating func run(_ buf: UnsafeBufferPointer<UInt8>) {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            fail(SourceLocation(file: file, line: 0, column: 0), "cannot initialise the YAML parser")
            return
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_input_string(&parser, buf.baseAddress, buf.count)

        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(&parser, &event) == 1 else {
                parserError(&parser)
                return
            }
            let keepGoing = handle(&event)
            yaml_event_delete(&event)
            if !keepGoing { return }
        }
    }

    mutating func parserError(_ parser: inout yaml_parser_t) {
        let problem = parser.problem.map { String(cString: $0) } ?? "invalid YAML"
        switch parser.error {
        case YAML_READER_ERROR:
            let at = locationOf(byteOffset: Int(parser.problem_offset))
            var message = problem
            if parser.problem_value >= 0 { message += " (#" + String(parser.problem_value, radix: 16, uppercase: true) + ")" }
            fail(at, message)
        case YAML_MEMORY_ERROR:
            fail(SourceLocation(file: file, line: 0, column: 0), "out of memory while parsing YAML")
        default:
            let at = loc(parser.problem_mark)
            for line in Set([at.line, loc(parser.context_mark).line]).sorted() {
                if let (column, length) = LongKeys.find(in: bytes, line: line) {
                    fail(SourceLocation(file: file, line: line, column: column),
                         "key is too long (\(length) characters; a YAML key can have at most \(LongKeys.limit))")
                    return
                }
            }
            let first = min(at.line, loc(parser.context_mark).line)
            if parser.context.map({ String(cString: $0).contains("flow") }) == true,
               let v = UnquotedVariables.find(in: bytes, lines: first...max(first, at.line)) {
                fail(SourceLocation(file: file, line: v.line, column: v.column),
                     "\(v.text) unquoted inside a flow collection: YAML reads its braces as syntax; quote it: \"\(v.text)\"")
                return
            }
            var message = problem
            if let ctx = parser.context.map({ String(cString: $0) }) {
                let c = loc(parser.context_mark)
                message += " (\(ctx) at line \(c.line), column \(c.column))"
            }
            fail(loc(parser.problem_mark), message)
        }
    }

    /// Line and column (in characters) of a byte offset; used for reader (encoding) errors.
    func locationOf(byteOffset: Int) -> SourceLocation {
        var line = 1, col = 1
        var i = 0
        let end = min(byteOffset, bytes.count)
        while i < end {
            let b = bytes[i]
            if b == 0x0A { line += 1; col = 1 } else if b & 0xC0 != 0x80 { col += 1 }
            i += 1
        }
        return SourceLocation(file: file, line: line, column: col)
    }

    /// Handles one event; false stops the parse.
    mutating func handle(_ event: inout yaml_event_t) -> Bool {
        let start = loc(event.start_mark)
        switch event.type {
        case YAML_STREAM_START_EVENT, YAML_DOCUMENT_END_EVENT:
            return true
        case YAML_STREAM_END_EVENT, YAML_NO_EVENT:
            return false
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 {
                fail(start, "only one YAML document is allowed in a spec")
                return false
            }
            return true
        case YAML_SCALAR_EVENT:
            let s = event.data.scalar
            let text = Self.string(s.value, Int(s.length)) ?? ""
            let style: YAMLNode.ScalarStyle
            switch s.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: style = .literal
            case YAML_FOLDED_SCALAR_STYLE: style = .folded
            default: style = .plain
            }
            let node = YAMLNode(kind: .scalar(text, style), location: start,
                                endLine: Int(event.end_mark.line) + 1, tag: Self.string(s.tag))
            if let anchor = Self.string(s.anchor) { anchors[anchor] = node }
            return add(node)
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.data.alias.anchor) ?? ""
            guard let target = anchors[name] else {
                fail(start, "unknown alias '*\(name)'")
                return false
            }
            aliasNodes += target.size
            if aliasNodes > YAMLReader.maxAliasNodes {
                fail(start, "aliases expand to more than \(YAMLReader.maxAliasNodes) nodes")
                return false
            }
            return add(target)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            let isMapping = event.type == YAML_MAPPING_START_EVENT
            if stack.count >= YAMLReader.maxDepth {
                fail(start, "nesting is deeper than \(YAMLReader.maxDepth) levels")
                return false
            }
            let tag = isMapping ? Self.string(event.data.mapping_start.tag) : Self.string(event.data.sequence_start.tag)
            let anchor = isMapping ? Self.string(event.data.mapping_start.anchor) : Self.string(event.data.sequence_start.anchor)
            stack.append(Frame(isMapping: isMapping, location: start, tag: tag, anchor: anchor))
            return true
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return false }
            let node: YAMLNode
            if frame.isMapping {
                node = YAMLNode(kind: .mapping(applyMerges(frame)), location: frame.location, tag: frame.tag)
            } else {
                node = YAMLNode(kind: .sequence(frame.items), location: frame.location, tag: frame.tag)
            }
            if let anchor = frame.anchor { anchors[anchor] = node }
            return add(node)
        default:
            return true
        }
    }

    /// Attaches a finished node to its parent, or makes it the document root.
    mutating func add(_ node: YAMLNode) -> Bool {
        guard !stack.isEmpty else {
            if diagnostics.isEmpty { root = node }
            return true
        }
        let top = stack.count - 1
        if !stack[top].isMapping {
            stack[top].items.append(node)
            return true
        }
        guard let key = stack[top].pendingKey else {
            stack[top].pendingKey = node
            return true
        }
        stack[top].pendingKey = nil
        guard case .scalar(let text, let style) = key.kind else {
            diagnostics.append(Diagnostic(location: key.location, message: "mapping keys must be scalars"))
            return true
        }
        if style == .plain && key.tag == nil && text == "<<" {
            stack[top].hasMerge = true
        } else if let first = stack[top].seenKeys[text] {
            diagnostics.append(Diagnostic(location: key.location,
                                          message: "duplicate key '\(text)' (first defined at line \(first.line), column \(first.column))"))
            return true
        } else {
            stack[top].seenKeys[text] = key.location
        }
        stack[top].pairs.append(YAMLPair(key: key, value: node))
        return true
    }

    /// Replaces `<<: *base` (or `<<: [*a, *b]`) entries by the merged pairs whose keys the mapping does not set itself.
    mutating func applyMerges(_ frame: Frame) -> [YAMLPair] {
        guard frame.hasMerge else { return frame.pairs }
        var present = Set(frame.seenKeys.keys)
        var out: [YAMLPair] = []
        for pair in frame.pairs {
            guard pair.key.isPlainScalar, pair.key.scalarText == "<<" else { out.append(pair); continue }
            var sources: [YAMLNode] = []
            switch pair.value.kind {
            case .mapping: sources = [pair.value]
            case .sequence(let items): sources = items
            case .scalar: break
            }
            for source in sources {
                guard let pairs = source.mappingPairs else {
                    diagnostics.append(Diagnostic(location: source.location, message: "a merge key '<<' needs a mapping or a list of mappings"))
                    continue
                }
                for p in pairs {
                    guard let k = p.key.scalarText, !present.contains(k) else { continue }
                    present.insert(k)
                    out.append(p)
                }
            }
            if sources.isEmpty {
                diagnostics.append(Diagnostic(location: pair.value.location, message: "a merge key '<<' needs a mapping or a list of mappings"))
            }
        }
        return out
    }
}
