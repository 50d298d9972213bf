import Foundation
import SluiceCore
import Synchronization
import Testing
@testable import SluiceLua

/// Answers `geo` lookups later (pending tokens) when the call can suspend, and now otherwise.
private final class DeferredGeo: LuaLookupProvider {
    let asked = Mutex<[(key: String, canSuspend: Bool)]>([])
    let nextToken = Atomic<Int64>(0)

    func lookupRow(table: String, key: String, canSuspend: Bool) -> LuaLookupAnswer {
        guard table == "geo" else { return .noTable }
        asked.withLock { $0.append((key, canSuspend)) }
        if key == "down" { return .failed("service unavailable") }
        if !canSuspend { return .row(Array(#"{"country":"SYNC-\#(key)"}"#.utf8)) }
        return .pending(nextToken.add(1, ordering: .relaxed).newValue)
    }
}

@Suite struct SuspendedCallTests {
    static let code = """
        local M = {}
        function M.enrich(event, ctx)
          local g = ctx.lookup("geo", event.ip)
          ctx.emit({ emitted_for = event.id })
          event.country = g and g.country or "none"
          return event
        end
        function M.twice(event, ctx)
          local a = ctx.lookup("geo", event.ip)
          local b = ctx.lookup("geo", event.ip .. "-second")
          return { a = a.country, b = b.country }
        end
        function M.keep_us(event, ctx)
          local g = ctx.lookup("geo", event.ip)
          return g ~= nil and g.country == "US" and event.id > 0
        end
        function M.mutate_in_filter(event, ctx)
          ctx.lookup("geo", event.ip)
          event.id = 99
          return true
        end
        function M.in_pcall(event, ctx)
          local ok, g = pcall(ctx.lookup, "geo", event.ip)
          return { ok = ok, country = g and g.country }
        end
        function M.in_xpcall(event, ctx)
          local ok, g = xpcall(ctx.lookup, function(m) return m end, "geo", event.ip)
          return { ok = ok, country = g and g.country }
        end
        function M.spin_after(event, ctx)
          local g = ctx.lookup("geo", event.ip)
          local n = 0
          for i = 1, 1e9 do n = n + i end
          return event
        end
        function M.own_yield(event) coroutine.yield(1) return event end
        function M.own_coroutine(event, ctx)
          local co = coroutine.wrap(function() return ctx.lookup("geo", event.ip) end)
          local g = co()
          return { country = g.country }
        end
        return M
        """

    private func harness(limits: LuaLimits = LuaLimits()) throws -> (Harness, DeferredGeo) {
        let h = try Harness(["e.lua": Self.code], limits: limits)
        let geo = DeferredGeo()
        h.engine.setLookups(geo)
        return (h, geo)
    }

    private func start(_ h: Harness, _ fn: String, _ json: String, mode: LuaCallMode = .map,
                       outs: inout [LuaEventHandle], truthy: inout Bool) throws -> Result<LuaCallProgress, LuaFailure> {
        let f = try h.engine.function(module: "e", name: fn)
        let ev = try h.decode(json)
        return h.engine.start(f, ev, meta: nil, mode: mode, truthy: &truthy, into: &outs)
    }

    @Test func callsSuspendInterleaveAndResumeWithTheirOwnEventsAndEmits() throws {
        let (h, _) = try harness()
        var outs1: [LuaEventHandle] = [], outs2: [LuaEventHandle] = []
        var t = false
        let first = try start(h, "enrich", #"{"id":1,"ip":"a"}"#, outs: &outs1, truthy: &t).get()
        let second = try start(h, "enrich", #"{"id":2,"ip":"b"}"#, outs: &outs2, truthy: &t).get()
        guard case .suspended(let c1, let t1) = first, case .suspended(let c2, let t2) = second else {
            Issue.record("expected two suspended calls, got \(first) \(second)"); return
        }
        #expect(t1 != t2 && c1 != c2)
        #expect(h.engine.suspendedCalls == 2)
        // The second resumes first: each call sees its own event and its own ctx.emit values.
        #expect(try h.engine.resume(c2, with: .row(Array(#"{"country":"FR"}"#.utf8)), meta: nil, truthy: &t, into: &outs2).get() == .done)
        #expect(try h.engine.resume(c1, with: .none, meta: nil, truthy: &t, into: &outs1).get() == .done)
        #expect(try outs1.map(h.encode) == [#"{"country":"none","id":1,"ip":"a"}"#, #"{"emitted_for":1}"#])
        #expect(try outs2.map(h.encode) == [#"{"country":"FR","id":2,"ip":"b"}"#, #"{"emitted_for":2}"#])
        #expect(h.engine.suspendedCalls == 0)
    }

    @Test func aCallCanSuspendMoreThanOnce() throws {
        let (h, geo) = try harness()
        var outs: [LuaEventHandle] = []
        var t = false
        guard case .suspended(let c, _) = try start(h, "twice", #"{"ip":"x"}"#, outs: &outs, truthy: &t).get() else {
            Issue.record("not suspended"); return
        }
        let again = try h.engine.resume(c, with: .row(Array(#"{"country":"A"}"#.utf8)), meta: nil, truthy: &t, into: &outs).get()
        guard case .suspended(let c2, _) = again else { Issue.record("second lookup did not suspend: \(again)"); return }
        #expect(c2 == c)
        #expect(try h.engine.resume(c, with: .row(Array(#"{"country":"B"}"#.utf8)), meta: nil, truthy: &t, into: &outs).get() == .done)
        #expect(try outs.map(h.encode) == [#"{"a":"A","b":"B"}"#])
        #expect(geo.asked.withLock { $0.map(\.key) } == ["x", "x-second"])
    }

    @Test func aSuspendedFilterKeepsItsReadOnlyViewWhileOtherCallsRun() throws {
        let (h, _) = try harness()
        var none: [LuaEventHandle] = []
        var t1 = false, t2 = false
        guard case .suspended(let c1, _) = try start(h, "keep_us", #"{"id":1,"ip":"a"}"#, mode: .test, outs: &none, truthy: &t1).get(),
              case .suspended(let c2, _) = try start(h, "keep_us", #"{"id":0,"ip":"b"}"#, mode: .test, outs: &none, truthy: &t2).get()
        else { Issue.record("filters did not suspend"); return }
        let us = Array(#"{"country":"US"}"#.utf8)
        _ = try h.engine.resume(c1, with: .row(us), meta: nil, truthy: &t1, into: &none).get()
        _ = try h.engine.resume(c2, with: .row(us), meta: nil, truthy: &t2, into: &none).get()
        #expect(t1 == true)    // id 1 > 0: its own event, not the other filter's
        #expect(t2 == false)
        let ev = try h.decode(#"{"id":1,"ip":"a"}"#)
        let f = try h.engine.function(module: "e", name: "mutate_in_filter")
        guard case .suspended(let c3, _) = try h.engine.start(f, ev, meta: nil, mode: .test, truthy: &t1, into: &none).get() else {
            Issue.record("not suspended"); return
        }
        let r = h.engine.resume(c3, with: .none, meta: nil, truthy: &t1, into: &none)
        guard case .failure(let failure) = r else { Issue.record("a filter changed its event"); return }
        #expect(failure.message.contains("read-only"))
        #expect(try h.encode(ev) == #"{"id":1,"ip":"a"}"#)
    }

    @Test func aFailedAnswerRaisesInTheUDFAndPcallCanCatchIt() throws {
        let (h, _) = try harness()
        var outs: [LuaEventHandle] = []
        var t = false
        guard case .suspended(let c, _) = try start(h, "enrich", #"{"id":1,"ip":"a"}"#, outs: &outs, truthy: &t).get() else {
            Issue.record("not suspended"); return
        }
        let r = h.engine.resume(c, with: .failed("timeout after 3 attempts"), meta: nil, truthy: &t, into: &outs)
        guard case .failure(let failure) = r else { Issue.record("expected a failure"); return }
        #expect(failure.message.contains("ctx.lookup('geo', 'a'): timeout after 3 attempts"), "\(failure.message)")
        #expect(outs.isEmpty)
        #expect(h.engine.suspendedCalls == 0)

        guard case .suspended(let c2, _) = try start(h, "in_pcall", #"{"ip":"b"}"#, outs: &outs, truthy: &t).get() else {
            Issue.record("a lookup inside pcall did not suspend"); return
        }
        _ = try h.engine.resume(c2, with: .failed("down"), meta: nil, truthy: &t, into: &outs).get()
        #expect(try outs.map(h.encode) == [#"{"ok":false}"#])
    }

    @Test func whereACallCannotSuspendTheProviderAnswersSynchronously() throws {
        let (h, geo) = try harness()
        var outs: [LuaEventHandle] = []
        var t = false
        #expect(try start(h, "in_xpcall", #"{"ip":"q"}"#, outs: &outs, truthy: &t).get() == .done)
        #expect(try start(h, "own_coroutine", #"{"ip":"r"}"#, outs: &outs, truthy: &t).get() == .done)
        #expect(try outs.map(h.encode) == [#"{"country":"SYNC-q","ok":true}"#, #"{"country":"SYNC-r"}"#])
        // The plain (non-suspendable) call path answers synchronously too.
        let f = try h.engine.function(module: "e", name: "enrich")
        var plain: [LuaEventHandle] = []
        try h.engine.map(f, try h.decode(#"{"id":3,"ip":"s"}"#), meta: nil, into: &plain).get()
        #expect(try h.encode(plain[0]) == #"{"country":"SYNC-s","id":3,"ip":"s"}"#)
        #expect(geo.asked.withLock { $0.map(\.canSuspend) } == [false, false, false])
    }

    @Test func theInstructionBudgetHoldsAcrossASuspension() throws {
        let (h, _) = try harness(limits: LuaLimits(instructions: 100_000))
        var outs: [LuaEventHandle] = []
        var t = false
        guard case .suspended(let c, _) = try start(h, "spin_after", #"{"ip":"a"}"#, outs: &outs, truthy: &t).get() else {
            Issue.record("not suspended"); return
        }
        // Another call runs in between and must not reset the suspended call's budget use.
        _ = try start(h, "enrich", #"{"id":5,"ip":"b"}"#, outs: &outs, truthy: &t)
        let r = h.engine.resume(c, with: .none, meta: nil, truthy: &t, into: &outs)
        guard case .failure(let failure) = r else { Issue.record("the loop ran unbounded"); return }
        #expect(failure.kind == .instructionLimit)
    }

    @Test func aYieldOfTheUDFsOwnIsAnErrorNotASuspension() throws {
        let (h, _) = try harness()
        var outs: [LuaEventHandle] = []
        var t = false
        let r = try start(h, "own_yield", #"{"ip":"a"}"#, outs: &outs, truthy: &t)
        guard case .failure(let failure) = r else { Issue.record("expected an error, got \(r)"); return }
        #expect(failure.message.contains("yield from outside a coroutine"))
        #expect(h.engine.suspendedCalls == 0)
    }

    @Test func abandonedCallsFreeTheirSlotsAndCoroutinesAreReused() throws {
        let (h, _) = try harness()
        var outs: [LuaEventHandle] = []
        var t = false
        for round in 0..<200 {
            guard case .suspended(let c, _) = try start(h, "enrich", #"{"id":\#(round),"ip":"a"}"#, outs: &outs, truthy: &t).get() else {
                Issue.record("not suspended"); return
            }
            if round % 2 == 0 { h.engine.abandon(c) }
            else { _ = try h.engine.resume(c, with: .none, meta: nil, truthy: &t, into: &outs).get() }
            for o in outs { h.engine.release(o) }
            outs.removeAll()
        }
        #expect(h.engine.suspendedCalls == 0)
        let before = h.engine.memoryInUse
        for round in 0..<200 {
            guard case .suspended(let c, _) = try start(h, "enrich", #"{"id":\#(round),"ip":"a"}"#, outs: &outs, truthy: &t).get() else { return }
            _ = try h.engine.resume(c, with: .none, meta: nil, truthy: &t, into: &outs).get()
            for o in outs { h.engine.release(o) }
            outs.removeAll()
        }
        #expect(h.engine.memoryInUse < before + 256 * 1024, "memory grew from \(before) to \(h.engine.memoryInUse)")
    }
}
