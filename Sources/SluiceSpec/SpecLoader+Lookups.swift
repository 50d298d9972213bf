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
        guard let f = fields(node, what, allowed: ["file", "refresh", "http"]) else { return nil }
        if let httpNode = f["http"] {
            if f["file"] != nil { diags.error(httpNode.location, "\(what) has both 'file' and 'http'; choose one") }
            if let r = f["refresh"] { diags.error(r.location, "'refresh' applies to file lookups; an http lookup caches with 'cache: { ttl }'") }
            return parseHTTPLookup(httpNode, what).map { LookupSpec(name: name, location: at, kind: .http($0)) }
        }
        var refresh = LookupRefresh.never
        if let r = f["refresh"] {
            if r.scalarText == "watch" { refresh = .watch } else if let ms = duration(r, "'refresh' in \(what) (or watch)", positive: true) {
                refresh = .every(ms)
            }
        }
        guard let fileNode = f["file"] else {
            diags.error(node.location, "missing 'file' or 'http' in \(what) (e.g. file: { path: data/titles.csv, key: title_id })")
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

    private mutating func parseHTTPLookup(_ node: YAMLNode, _ lookup: String) -> HTTPLookupSpec? {
        let what = "'http' in \(lookup)"
        guard let f = fields(node, what, allowed: ["url", "rate", "concurrency", "timeout", "retry", "cache", "on_error"]) else { return nil }
        guard let urlNode = required(f, "url", what, node), let url = nonEmptyString(urlNode, "'url' in \(lookup)") else { return nil }
        var spec = HTTPLookupSpec(url: url)
        let placeholders = url.split(separator: "{", omittingEmptySubsequences: false).count - 1
        if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            diags.error(urlNode.location, "'url' in \(lookup) must start with http:// or https://, found '\(url)'")
        } else if placeholders != 1 || !url.contains("}") {
            diags.error(urlNode.location, "'url' in \(lookup) needs exactly one placeholder for the key, e.g. 'http://127.0.0.1:8080/geo/{ip}'")
        }
        if let r = f["rate"] {
            if let text = r.scalarText, let rate = Self.parseRate(text) { spec.rate = rate } else {
                diags.error(r.location, "invalid 'rate' in \(lookup): expected requests per second or minute, e.g. 200/s or 600/m")
            }
        }
        if let c = f["concurrency"], let n = integer(c, "'concurrency' in \(lookup)", min: 1) { spec.concurrency = n }
        if let t = f["timeout"], let ms = duration(t, "'timeout' in \(lookup)", positive: true) { spec.timeoutMs = ms }
        if let r = f["retry"], let rf = fields(r, "'retry' in \(lookup)", allowed: ["max", "backoff"]) {
            if let m = rf["max"], let n = integer(m, "'max' in 'retry' of \(lookup)", min: 0) { spec.retries = n }
            if let b = rf["backoff"] {
                if let text = b.scalarText, let range = Self.parseDurationRange(text) {
                    spec.backoffMinMs = range.0; spec.backoffMaxMs = range.1
                } else {
                    diags.error(b.location, "invalid 'backoff' in \(lookup): expected MIN..MAX, e.g. 50ms..2s")
                }
            }
        }
        if let c = f["cache"], let cf = fields(c, "'cache' in \(lookup)", allowed: ["size", "ttl", "negative_ttl"]) {
            if let s = cf["size"], let n = integer(s, "'size' in 'cache' of \(lookup)", min: 0) { spec.cacheSize = n }
            if let t = cf["ttl"], let ms = duration(t, "'ttl' in 'cache' of \(lookup)", positive: true) { spec.ttlMs = ms }
            if let t = cf["negative_ttl"], let ms = duration(t, "'negative_ttl' in 'cache' of \(lookup)", positive: false) { spec.negativeTtlMs = ms }
        }
        if let o = f["on_error"], let v = choice(o, "'on_error' in \(lookup)", ["dead_letter", "nil"]) {
            spec.onError = HTTPLookupSpec.OnError(rawValue: v) ?? .deadLetter
        }
        return spec
    }

    /// `200/s`, `600/m` (also `/sec`, `/min`).
    static func parseRate(_ text: String) -> (count: Int, windowMs: Int64)? {
        let parts = text.trimmingSpaces.split(separator: "/")
        guard parts.count == 2, let n = Int(parts[0].trimmingCharacters(in: .whitespaces)), n > 0 else { return nil }
        switch parts[1].trimmingCharacters(in: .whitespaces) {
        case "s", "sec", "second": return (n, 1000)
        case "m", "min", "minute": return (n, 60_000)
        default: return nil
        }
    }

    /// `50ms..2s`.
    static func parseDurationRange(_ text: String) -> (Int64, Int64)? {
        let parts = text.trimmingSpaces.components(separatedBy: "..")
        guard parts.count == 2, let a = YAMLScalars.parseDurationMillis(parts[0].trimmingSpaces),
              let b = YAMLScalars.parseDurationMillis(parts[1].trimmingSpaces), a >= 0, b >= a else { return nil }
        return (a, b)
    }
}
