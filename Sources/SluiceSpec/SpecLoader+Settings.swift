import SluiceCore

/// `udfs:` and `settings:`.
extension Loader {
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

    mutating func parseSettings(_ node: YAMLNode, pipeline: String) -> Settings {
        var s = Settings()
        guard let f = fields(node, "'settings'", allowed: ["queue_capacity", "batch_size", "workers", "admin", "max_drift", "max_event_bytes", "grace", "checkpoint", "queue_bytes", "linger"]) else { return s }
        if let c = f["checkpoint"], let cf = fields(c, "'checkpoint' in 'settings'", allowed: ["dir", "every", "keep"]) {
            var cs = CheckpointSettings(dir: Paths.resolve(".sluice/" + pipeline, against: directory))
            if let d = cf["dir"], let p = path(d, "'dir' in 'checkpoint'") { cs.dir = p }
            if let e = cf["every"], let v = duration(e, "'every' in 'checkpoint'", positive: true) { cs.every = v }
            if let k = cf["keep"], let v = integer(k, "'keep' in 'checkpoint'", min: 1) { cs.keep = v }
            s.checkpoint = cs
        }
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
        if let n = f["max_drift"], let v = duration(n, "'max_drift' in 'settings'", positive: true) { s.maxDrift = v }
        if let n = f["grace"], let v = duration(n, "'grace' in 'settings'", positive: true) { s.grace = v }
        if let n = f["linger"], let v = duration(n, "'linger' in 'settings'", positive: false) { s.linger = v }
        if let n = f["max_event_bytes"] {
            if let text = n.scalarText, !n.isNull, let v = YAMLScalars.parseSize(text), v > 0 { s.maxEventBytes = v } else {
                diags.error(n.location, "invalid size \(n.kindDescription) for 'max_event_bytes' in 'settings' (expected e.g. 1MiB, 64KiB or a number of bytes)")
            }
        }
        if let n = f["queue_bytes"] {
            if let text = n.scalarText, !n.isNull, let v = YAMLScalars.parseSize(text), v > 0 { s.queueBytes = v } else {
                diags.error(n.location, "invalid size \(n.kindDescription) for 'queue_bytes' in 'settings' (expected e.g. 64MiB, 512KiB or a number of bytes)")
            }
        }
        if let n = f["workers"] {
            if n.scalarText == "auto" { s.workers = nil } else if let text = n.scalarText, !n.isNull, YAMLScalars.parseInt(text) != nil {
                s.workers = integer(n, "'workers' in 'settings'", min: 1)
            } else {
                diags.error(n.location, "invalid value \(n.kindDescription) for 'workers' in 'settings' (expected auto or a number)")
            }
        }
        return s
    }
}
