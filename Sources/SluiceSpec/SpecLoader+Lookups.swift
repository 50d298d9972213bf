/// `lookups:` — side inputs for UDFs.
extension Loader {
    mutating func parseLookups(_ node: YAMLNode?) -> [LookupSpec] {
        guard let node, !node.isNull else { return [] }
        guard let pairs = node.mappingPairs else {
            diags.error(node.location, "expected a mapping of lookup names for 'lookups', found \(node.kindDescription)")
            return []
        }
        var out: [LookupSpec] = []
        for pair in pairs {
            guard let name = pair.key.scalarText else { continue }
            guard isValidName(name) else {
                diags.error(pair.key.location, "invalid lookup name '\(name)' (use letters, digits, '_' and '-')")
                continue
            }
            if let l = parseLookup(name, pair.key.location, pair.value) { out.append(l) }
        }
        return out
    }

    private mutating func parseLookup(_ name: String, _ at: SourceLocation, _ node: YAMLNode) -> LookupSpec? {
        let what = "lookup '\(name)'"
        guard let f = fields(node, what, allowed: ["file", "refresh"], notSupported: ["http"]) else { return nil }
        var refresh = LookupRefresh.never
        if let r = f["refresh"] {
            if r.scalarText == "watch" { refresh = .watch } else if let ms = duration(r, "'refresh' in \(what) (or watch)", positive: true) {
                refresh = .every(ms)
            }
        }
        guard let fileNode = f["file"] else {
            if node.mappingPairs?.contains(where: { $0.key.scalarText == "http" }) != true { diags.error(node.location, "missing 'file' in \(what) (e.g. file: { path: data/titles.csv, key: title_id })") }
            return nil
        }
        guard let ff = fields(fileNode, "'file' in \(what)", allowed: ["path", "key"]) else { return nil }
        let pathNode = required(ff, "path", "'file' in \(what)", fileNode)
        let keyNode = required(ff, "key", "'file' in \(what)", fileNode)
        guard let pathNode, let keyNode,
              let path = path(pathNode, "'path' in \(what)"),
              let key = nonEmptyString(keyNode, "'key' in \(what)") else { return nil }
        let format: FileLookupSpec.Format = path.lowercased().hasSuffix(".csv") ? .csv : .jsonl
        return LookupSpec(name: name, location: at, kind: .file(FileLookupSpec(path: path, key: key, format: format)), refresh: refresh)
    }
}
