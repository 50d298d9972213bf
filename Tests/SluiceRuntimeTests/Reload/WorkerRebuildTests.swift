import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceSpec
import SluiceLua

/// A worker whose Lua engine is poisoned (over its memory limit) rebuilds it from its code
/// snapshot; when that is impossible, its events are dead-lettered with the reason, never
/// dropped while the batch is acknowledged. The snapshot of a version a worker runs is never pruned.
@Suite struct WorkerRebuildTests {
    static let udfs = """
    local M = {}
    function M.f(e)
      if e.bomb then local t = {} for i = 1, 1e8 do t[i] = string.rep("x", 100) .. i end end
      e.ok = true
      return e
    end
    return M
    """

    /// A spec whose UDF directory (holding `m.lua`) is returned beside it.
    func spec(_ yaml: String) throws -> (PipelineSpec, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-rebuild-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("udfs"), withIntermediateDirectories: true)
        try Data(Self.udfs.utf8).write(to: dir.appendingPathComponent("udfs/m.lua"))
        let spec = try SpecLoader.load(text: yaml, file: "p.yaml", directory: dir.appendingPathComponent("pipelines").path, environment: [:])
        return (spec, spec.udfs.dir)
    }

    static let yaml = """
    udfs: { limits: { memory: 8MiB } }
    sources: { s: { stdin: {} } }
    transforms:
      t: { from: s, map: { udf: m.f } }
      keep: { from: t, filter: 'event.n > 0' }
    sinks: { o: { from: keep, stdout: {} } }
    """

    func settings(_ spec: PipelineSpec, live: LiveCode? = nil) -> LuaSettings {
        LuaSettings(udfDir: spec.udfs.dir, limits: LuaLimits(instructions: spec.udfs.instructionLimit, memoryBytes: spec.udfs.memoryLimit),
                    version: 1, log: { _, _ in }, live: live)
    }

    func batch(_ lines: [String]) -> Batch {
        Batch(source: 0, sequence: 0, events: lines.enumerated().map { Event($1, position: Int64($0 + 1)) })
    }

    @Test func eventsAfterAFailedRebuildAreDeadLetteredWithTheReason() throws {
        let (spec, dir) = try spec(Self.yaml)
        let worker = try Worker(plan: Plan(spec), lua: settings(spec))
        try FileManager.default.removeItem(atPath: dir)   // the rebuild after the bomb cannot load m.lua
        let out = worker.process(batch([#"{"n":1,"bomb":true}"#, #"{"n":2}"#, #"{"n":3}"#]))
        #expect(out.sinks[0].count == 0)
        #expect(out.deadLetters.count == 3)
        #expect(out.deadLetters.first?.reason.contains("memory") == true)
        for d in out.deadLetters.dropFirst() {
            #expect(d.reason.contains("Lua engine could not be rebuilt"), "\(d.reason)")
        }
        // The next batch tries again and, still failing, dead-letters too.
        let next = worker.process(batch([#"{"n":4}"#]))
        #expect(next.deadLetters.count == 1)
        #expect(next.sinks[0].count == 0)
    }

    @Test func theSnapshotOfAVersionAWorkerRunsSurvivesManyReloads() throws {
        let (spec, dir) = try spec(Self.yaml)
        let plan = Plan(spec)
        var lua = settings(spec)
        let reloader = try #require(try Reloader(mode: .signal, udfDir: dir, plan: plan, lua: lua))
        defer { reloader.stop() }
        lua.live = reloader.live
        let worker = try Worker(plan: plan, lua: lua)   // runs version 1
        for _ in 0..<12 { reloader.reload() }
        #expect(reloader.live.current.number == 13)
        // The bomb poisons the engine; the rebuild (same version 1) must find its snapshot.
        let out = worker.process(batch([#"{"n":1,"bomb":true}"#, #"{"n":2}"#]))
        #expect(out.deadLetters.count == 1)
        #expect(out.sinks[0].count == 1)
        // Versions no one runs any more are pruned.
        let base = ((reloader.live.current.dir as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: base) }
        let versions = try FileManager.default.contentsOfDirectory(atPath: base)
        #expect(versions.count <= 3, "\(versions)")
        withExtendedLifetime(worker) {}
    }
}
