import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Checks an async `condition` every 50 ms until it holds (true) or `timeout` seconds pass (false).
func eventuallyAsync(timeout: Double = 20, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try await condition() { return true }
        if Date() >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(50))
    }
}

/// The pipeline the operations tests watch: a generator at a steady rate through a declarative
/// filter and projection (fused), a Lua map that dead-letters every event whose `seq` is a multiple
/// of 50, a dedup stage, two file sinks and a file dead letter sink; the admin endpoint on a free port.
enum OpsPipeline {
    static let components = ["plays", "long", "shaped", "tagged", "unique", "us", "all", "dead_letter"]

    static let udf = """
    local M = {}
    local countries = { "US", "FR", "BR", "JP" }
    function M.play(seed, ctx)
      local n = seed.seq
      return { seq = n, ts = 1700000000000 + n, country = countries[n % 4 + 1],
               duration_ms = (n * 7919) % 200000, os = (n % 3 == 0) and "ios" or "web" }
    end
    function M.tag(e, ctx)
      if e.seq % 50 == 0 then error("seq " .. e.seq .. " is a multiple of 50") end
      e.v = ctx.version
      return e
    end
    return M

    """

    /// Writes `udfs/gen.lua` and `pipelines/p.yaml` into `dir`; `extraSinks` are more sink lines.
    static func write(into dir: URL, rate: Int = 1000, extraSinks: String = "", settings: String = "") throws {
        try dir.write(udf, to: "udfs/gen.lua")
        try dir.write("""
        pipeline: ops
        udfs: { reload: signal }
        sources:
          plays: { generate: { rate: \(rate)/s, udf: gen.play }, time: ts, lateness: 1s }
        transforms:
          long: { from: plays, filter: { match: { duration_ms: { gt: 60000 } } } }
          shaped: { from: long, project: { seq: seq, ts: ts, country: country, os: os } }
          tagged: { from: shaped, map: { udf: gen.tag } }
          unique: { dedup: { from: tagged, key: '{seq}', within: 1m } }
        sinks:
          us: { from: tagged, when: 'event.country == "US"', file: { path: ../out/us.jsonl } }
          all: { from: unique, file: { path: ../out/all.jsonl }, queue: { capacity: 500 } }
        \(extraSinks)
        dead_letter: { file: { path: ../out/dead.jsonl } }
        settings: { workers: 2, admin: { listen: 127.0.0.1:0 }\(settings) }

        """, to: "pipelines/p.yaml")
    }

    /// Starts the pipeline and waits for its admin port.
    static func start(_ dir: URL) async throws -> (ReloadingRun, Int) {
        let run = try ReloadingRun(dir: dir)
        let port = try await offPool { () -> Int? in
            run.waitForStderr { StatefulRun.adminPort($0) != nil }
            return StatefulRun.adminPort(run.stderrLines)
        }
        guard let port else { throw POSIXError(.ECONNREFUSED) }
        return (run, port)
    }

    /// `GET /topology`, parsed.
    static func topology(port: Int) async throws -> [String: Any]? {
        let body = try await offPool { StatefulRun.get("/topology", port: port) }
        return body.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    /// The node of `/topology` named `name`.
    static func node(_ t: [String: Any]?, _ name: String) -> [String: Any]? {
        (t?["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    /// A JSON line's object (nil if it is not one).
    static func object(_ line: String) -> [String: Any]? {
        try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    }

    /// The duration the generator gives event `seq`.
    static func duration(_ seq: Int) -> Int { (seq * 7919) % 200000 }
}
