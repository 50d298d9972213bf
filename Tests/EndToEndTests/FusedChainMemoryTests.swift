import Foundation
import Testing

/// A declarative filter right after the source (the fused fast path) followed by a Lua map: the
/// map's Lua handles are freed after each event, so a small Lua memory limit holds over many
/// events. (They used to be kept until the state went over its limit, after which every event was
/// dead-lettered `memory limit exceeded`.)
@Suite struct FusedChainMemoryTests {
    @Test func aMapAfterAFusedFilterDoesNotAccumulateLuaMemory() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        local M = {}
        function M.play(seed, ctx) return { seq = seed.seq, d = (seed.seq * 7919) % 200000 } end
        function M.tag(e, ctx) e.v = ctx.version; return e end
        return M

        """, to: "udfs/gen.lua")
        try dir.write("""
        pipeline: fused-memory
        udfs: { limits: { memory: 4MiB } }
        sources: { plays: { generate: { count: 60000, udf: gen.play } } }
        transforms:
          long: { from: plays, filter: { match: { d: { gt: 60000 } } } }
          tagged: { from: long, map: { udf: gen.tag } }
        sinks: { o: { from: tagged, file: { path: ../out/o.jsonl } } }
        """, to: "pipelines/p.yaml")
        // The generator numbers its events from 1.
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], cwd: dir)
        let long = (1...60000).filter { ($0 * 7919) % 200000 > 60000 }.count
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("read 60000 events; wrote o=\(long); dead-lettered 0"), "\(r.stderr)")
    }
}
