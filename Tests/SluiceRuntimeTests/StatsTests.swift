import Testing
@testable import SluiceRuntime

/// Counters saturate instead of trapping, and UDF metric names are bounded.
@Suite struct StatsTests {
    @Test func componentCountsSaturateInsteadOfTrapping() {
        let stats = PipelineStats()
        var big = ComponentCounts()
        big.received = Int.max; big.emitted = Int.max - 1; big.deadLettered = Int.max; big.dropped = Int.max
        stats.merge(["t": big])
        stats.merge(["t": big])
        stats.add("t") { $0.received += 5 }
        let t = stats.snapshot["t"]
        #expect(t?.received == Int.max)
        #expect(t?.emitted == Int.max)
        #expect(t?.dropped == Int.max)
    }

    @Test func udfCountersSaturateInBothDirections() {
        let stats = PipelineStats()
        stats.mergeLuaCounters([("up", Int64.max), ("down", Int64.min)])
        stats.mergeLuaCounters([("up", 10), ("down", -10)])
        #expect(stats.udfCounters["up"] == Int64.max)
        #expect(stats.udfCounters["down"] == Int64.min)
    }

    @Test func distinctUDFMetricNamesAreCappedWithOneDroppedCounter() {
        let stats = PipelineStats()
        let cap = PipelineStats.maxUDFCounterNames
        #expect(cap == 1_000)
        stats.mergeLuaCounters((0..<(cap + 500)).map { ("m\($0)", 2) })
        stats.mergeLuaCounters([("m0", 1), ("late", 3)])
        let counters = stats.udfCounters
        #expect(counters.count == cap + 1)
        #expect(counters["m0"] == 3)
        #expect(counters["late"] == nil)
        #expect(counters[PipelineStats.droppedUDFCounterName] == Int64(500 * 2 + 3))
    }

    @Test func metricsRenderHugeCountersWithoutTrapping() {
        let stats = PipelineStats()
        var big = ComponentCounts()
        big.received = Int.max
        stats.merge(["t": big])
        stats.mergeLuaCounters([("huge", Int64.max), ("tiny", Int64.min), ("n", 42)])
        let routes = AdminRoutes(pipeline: "p", stats: stats, operators: OperatorMetrics(operators: []), sinks: [], reloader: nil, phase: PipelinePhase())
        let text = routes.metrics()
        #expect(text.contains(#"sluice_udf_counter_total{pipeline="p",metric="n"} 42"#), "\(text)")
        #expect(text.contains(#"metric="huge"} 9.223372036854776e+18"#), "\(text)")
        #expect(text.contains(#"component="t"} 9.223372036854776e+18"#), "\(text)")
    }
}
