import SluiceCore

/// The `tests:` block.
extension Loader {
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
