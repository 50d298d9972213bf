import Testing
@testable import SluiceLua

/// `ctx.count` inside one batch saturates like the pipeline totals instead of wrapping.
@Suite struct CounterTests {
    @Test func ctxCountSaturatesInsteadOfWrapping() throws {
        let h = try Harness(["c.lua": """
        local M = {}
        function M.up(e, ctx) ctx.count("up", math.maxinteger); ctx.count("down", math.mininteger); return true end
        return M
        """])
        let f = try h.engine.function(module: "c", name: "up")
        let ev = try h.decode("{}")
        for _ in 0..<2 { _ = try h.engine.test(f, ev, meta: nil).get() }
        let taken = Dictionary(uniqueKeysWithValues: h.engine.takeCounters().map { ($0.0, $0.1) })
        #expect(taken == ["up": Int64.max, "down": Int64.min])
    }
}
