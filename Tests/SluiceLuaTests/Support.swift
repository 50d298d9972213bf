import Foundation
import SluiceCore
@testable import SluiceLua

/// A temporary `udfs` directory with the given files (relative path -> contents), removed on deinit.
final class UDFDir {
    let root: String
    let path: String

    init(_ files: [String: String] = [:]) throws {
        root = NSTemporaryDirectory() + "sluice-lua-\(UUID().uuidString)"
        path = root + "/udfs"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, text) in files {
            let full = path + "/" + name
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

/// Collects log lines from an engine.
final class LogSink: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(String, String)] = []

    var lines: [(String, String)] { lock.withLock { items } }

    func log(_ level: String, _ msg: String) { lock.withLock { items.append((level, msg)) } }
}

/// An engine over a fresh udfs directory; keeps the directory alive as long as it is.
struct Harness {
    let dir: UDFDir
    let engine: LuaEngine
    let logs: LogSink

    init(_ files: [String: String] = [:], limits: LuaLimits = LuaLimits(), version: Int = 1) throws {
        dir = try UDFDir(files)
        let sink = LogSink()
        logs = sink
        engine = try LuaEngine(udfDir: dir.path, limits: limits, version: version,
                               log: { level, msg in sink.log(level, msg) })
    }

    func decode(_ json: String) throws -> LuaEventHandle {
        try engine.decodeJSON(Array(json.utf8)).get()
    }

    func encode(_ h: LuaEventHandle) throws -> String {
        var out: [UInt8] = []
        try engine.encodeJSON(h, into: &out).get()
        return String(decoding: out, as: UTF8.self)
    }

    /// decode then encode.
    func roundTrip(_ json: String) throws -> String {
        let h = try decode(json)
        defer { engine.release(h) }
        return try encode(h)
    }

    /// Runs a map expression-like body: `function(event, ctx) <body> end` defined in module `t`.
    func mapOnce(_ fn: LuaFunctionID, _ json: String, meta: EventMeta? = nil) throws -> [String] {
        let h = try decode(json)
        defer { engine.release(h) }
        var outs: [LuaEventHandle] = []
        try engine.map(fn, h, meta: meta, into: &outs).get()
        defer { outs.forEach(engine.release) }
        return try outs.map(encode)
    }

    func failure<T>(_ r: Result<T, LuaFailure>) -> LuaFailure? {
        if case .failure(let f) = r { return f }
        return nil
    }
}

extension Result {
    var isFailure: Bool { if case .failure = self { return true } else { return false } }
}
