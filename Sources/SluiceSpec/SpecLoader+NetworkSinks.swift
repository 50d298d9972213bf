import SluiceCore

/// The `http` and `memcached` sink bodies and the `retry` key of every sink.
extension Loader {
    /// `retry: { max: N, backoff: MIN..MAX }` (`backoff` may also be one duration: MIN = MAX).
    mutating func retry(_ node: YAMLNode, _ what: String, default base: RetrySpec) -> RetrySpec? {
        let inner = "'retry' of \(what)"
        guard let f = fields(node, inner, allowed: ["max", "backoff"]) else { return nil }
        var spec = base
        if let m = f["max"] {
            guard let v = integer(m, "'max' in \(inner)", min: 0) else { return nil }
            spec.max = v
        }
        if let b = f["backoff"] {
            guard let text = b.scalarText, !b.isNull else {
                diags.error(b.location, "expected a range such as 100ms..10s for 'backoff' in \(inner), found \(b.kindDescription)")
                return nil
            }
            let parts = text.split(separator: "..", omittingEmptySubsequences: false).map(String.init)
            let bounds = parts.map { YAMLScalars.parseDurationMillis($0) }
            guard parts.count <= 2, let low = bounds.first ?? nil, let high = bounds.last ?? nil else {
                diags.error(b.location, "invalid 'backoff' '\(text)' in \(inner) (expected MIN..MAX, e.g. 100ms..10s)")
                return nil
            }
            guard low > 0, low <= high else {
                diags.error(b.location, "'backoff' in \(inner) must have 0 < MIN <= MAX, found \(text)")
                return nil
            }
            spec.minBackoff = low; spec.maxBackoff = high
        }
        return spec
    }

    /// `http: { url, batch, linger, format, headers, timeout }`.
    mutating func httpSink(_ body: YAMLNode, _ what: String) -> HTTPSinkSpec? {
        guard let b = fields(body, what, allowed: ["url", "batch", "linger", "format", "headers", "timeout"]) else { return nil }
        guard let urlNode = required(b, "url", what, body), let url = nonEmptyString(urlNode, "'url' in \(what)") else { return nil }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            diags.error(urlNode.location, "'url' in \(what) must start with http:// or https://, found '\(url)'")
            return nil
        }
        var spec = HTTPSinkSpec(url: url)
        var ok = true
        if let n = b["batch"] { if let v = integer(n, "'batch' in \(what)", min: 1) { spec.batch = v } else { ok = false } }
        if let n = b["linger"] { if let v = duration(n, "'linger' in \(what)", positive: false) { spec.linger = v } else { ok = false } }
        if let n = b["timeout"] { if let v = duration(n, "'timeout' in \(what)", positive: true) { spec.timeout = v } else { ok = false } }
        if let n = b["format"] {
            if let v = choice(n, "'format' in \(what)", ["ndjson", "json_array"]) { spec.format = HTTPSinkSpec.Format(rawValue: v) ?? .ndjson }
            else { ok = false }
        }
        if let n = b["headers"] {
            if let h = kafkaOptions(n, "'headers' in \(what)") {
                for pair in n.mappingPairs ?? [] {
                    guard let k = pair.key.scalarText, let v = h[k] else { continue }
                    if k.isEmpty || k.contains(where: { $0 == ":" || $0 == " " || $0 == "\n" || $0 == "\r" }) || v.contains(where: { $0 == "\n" || $0 == "\r" }) {
                        diags.error(pair.key.location, "invalid header '\(k)' in \(what) (no ':', spaces or line breaks in names, no line breaks in values)")
                        ok = false
                    } else {
                        spec.headers.append((k, v))
                    }
                }
            } else { ok = false }
        }
        return ok ? spec : nil
    }

    /// `memcached: { servers: [HOST:PORT, ...], key: TEMPLATE, ttl, timeout }`.
    mutating func memcachedSink(_ body: YAMLNode, _ what: String) -> MemcachedSinkSpec? {
        guard let b = fields(body, what, allowed: ["servers", "key", "ttl", "timeout", "connections"]) else { return nil }
        let serversNode = required(b, "servers", what, body)
        let keyNode = required(b, "key", what, body)
        var servers: [String] = []
        if let serversNode {
            let items = serversNode.sequenceItems ?? (serversNode.scalarText.map { _ in [serversNode] } ?? [])
            if items.isEmpty {
                diags.error(serversNode.location, "'servers' in \(what) must list at least one HOST:PORT")
            }
            for item in items {
                guard let s = nonEmptyString(item, "a server in \(what)") else { continue }
                let hostPort = s.trimmingSpaces
                guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]),
                      (1...65535).contains(port), colon != hostPort.startIndex else {
                    diags.error(item.location, "invalid server '\(s)' in \(what) (expected HOST:PORT, e.g. 127.0.0.1:11211)")
                    continue
                }
                servers.append(hostPort)
            }
        }
        let key = keyNode.flatMap { keyTemplate($0, "'key' in \(what)") }
        var spec = MemcachedSinkSpec(servers: servers, key: key?.description ?? "")
        var ok = key != nil && !servers.isEmpty && servers.count == (serversNode?.sequenceItems?.count ?? 1)
        if let n = b["ttl"] {
            if let v = duration(n, "'ttl' in \(what)", positive: false) {
                if v % 1000 != 0 || v > 30 * 86_400_000 {
                    diags.error(n.location, "'ttl' in \(what) must be whole seconds up to 30d (memcached reads longer ones as a date), found \(n.scalarText ?? "")")
                    ok = false
                } else {
                    spec.ttl = v / 1000
                }
            } else { ok = false }
        }
        if let n = b["timeout"] { if let v = duration(n, "'timeout' in \(what)", positive: true) { spec.timeout = v } else { ok = false } }
        if let n = b["connections"] {
            if let v = integer(n, "'connections' in \(what)", min: 1), v <= 64 { spec.connections = v }
            else {
                if n.scalarText.flatMap({ Int($0) }).map({ $0 > 64 }) == true { diags.error(n.location, "'connections' in \(what) must be at most 64") }
                ok = false
            }
        }
        return ok ? spec : nil
    }
}
