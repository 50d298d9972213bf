import Foundation
import SluiceCore
import Testing
@testable import SluiceLua

@Suite struct UDFCallTests {
    static let plays = """
        local M = {}
        function M.is_play(event, ctx) return event.event_type == "play" end
        function M.shape(event, ctx)
          return { profile_id = event.profile_id, title_id = event.title_id, ts = event.ts,
                   country = event.country, os = event.client and event.client.os }
        end
        function M.drop(event) return nil end
        function M.number(event) return 42 end
        function M.explode(event)
          local out = {}
          for i, tag in ipairs(event.tags) do out[i] = { id = event.id, tag = tag } end
          return out
        end
        function M.none(event) return nil end
        function M.badlist(event) return { {}, 7 } end
        function M.notlist(event) return "x" end
        function M.emitter(event, ctx)
          ctx.emit({ n = 1 })
          ctx.emit({ n = 2 })
          event.seen = true
          return event
        end
        function M.emit_only(event, ctx) ctx.emit(event) return nil end
        function M.flat_emit(event, ctx) ctx.emit({ extra = true }) return { { a = 1 } } end
        function M.emit_in_filter(event, ctx) ctx.emit(event) return true end
        function M.emit_then_fail(event, ctx) ctx.emit({}) error("boom") end
        function M.boom(event) local x = nil; return x.field end
        function M.raise_table(event) error({ code = 1 }) end
        function M.meta(event, ctx)
          local m = ctx.meta
          assert(ctx.meta == m, "meta is cached within a call")
          return { key = m.key, ts = m.timestamp, topic = m.topic, partition = m.partition,
                   offset = m.offset, trace = m.headers.trace, n = m.headers.n }
        end
        function M.now(event, ctx) return { now = ctx.now(), type = math.type(ctx.now()) } end
        function M.version(event, ctx) return { v = ctx.version } end
        function M.count(event, ctx) ctx.count("seen") ctx.count("bytes", 10) return true end
        function M.log(event, ctx) ctx.log("warn", "careful " .. event.id) print("p", 1, nil) return true end
        function M.write_ctx(event, ctx) ctx.x = 1 return true end
        return M
        """

    static let event = #"{"id":"e1","event_type":"play","profile_id":"p1","title_id":7,"ts":1700000000000,"country":"KR","client":{"os":"ios","app_version":"1.0"},"duration_ms":5000,"tags":["a","b","c"]}"#

    func fn(_ h: Harness, _ name: String) throws -> LuaFunctionID { try h.engine.function(module: "plays", name: name) }

    @Test func filterUsesLuaTruthiness() throws {
        let h = try Harness(["plays.lua": Self.plays])
        let play = try h.decode(Self.event)
        let pause = try h.decode(#"{"event_type":"pause"}"#)
        #expect(try h.engine.test(fn(h, "is_play"), play, meta: nil).get() == true)
        #expect(try h.engine.test(fn(h, "is_play"), pause, meta: nil).get() == false)
        let zero = try h.engine.expression("0", label: "zero")
        let nilExpr = try h.engine.expression("nil", label: "nil")
        #expect(try h.engine.test(zero, play, meta: nil).get() == true) // 0 is truthy in Lua
        #expect(try h.engine.test(nilExpr, play, meta: nil).get() == false)
    }

    @Test func inlineExpressionsSeeEventAndCtx() throws {
        let h = try Harness()
        let f = try h.engine.expression(#"event.event_type == "play" and (event.duration_ms or 0) > 1000"#, label: "plays_only")
        #expect(try h.engine.test(f, h.decode(Self.event), meta: nil).get())
        #expect(try !h.engine.test(f, h.decode(#"{"event_type":"play","duration_ms":null}"#), meta: nil).get())
        let v = try h.engine.expression("ctx.version == 1 -- trailing comment", label: "v")
        #expect(try h.engine.test(v, h.decode("{}"), meta: nil).get())
    }

    @Test func mapBuildsANewEvent() throws {
        let h = try Harness(["plays.lua": Self.plays])
        #expect(try h.mapOnce(fn(h, "shape"), Self.event)
                == [#"{"country":"KR","os":"ios","profile_id":"p1","title_id":7,"ts":1700000000000}"#])
    }

    @Test func mapReturningNilDropsAndANonTableIsABadReturn() throws {
        let h = try Harness(["plays.lua": Self.plays])
        #expect(try h.mapOnce(fn(h, "drop"), Self.event) == [])
        let ev = try h.decode(Self.event)
        var outs: [LuaEventHandle] = []
        let f = h.failure(h.engine.map(try fn(h, "number"), ev, meta: nil, into: &outs))
        #expect(f?.kind == .badReturn)
        #expect(f?.message.contains("got number") == true)
        #expect(outs.isEmpty)
    }

    @Test func flatMapReturnsAListOfEvents() throws {
        let h = try Harness(["plays.lua": Self.plays])
        let ev = try h.decode(Self.event)
        var outs: [LuaEventHandle] = []
        try h.engine.flatMap(try fn(h, "explode"), ev, meta: nil, into: &outs).get()
        #expect(try outs.map(h.encode) == [#"{"id":"e1","tag":"a"}"#, #"{"id":"e1","tag":"b"}"#, #"{"id":"e1","tag":"c"}"#])
        outs.removeAll()
        try h.engine.flatMap(try fn(h, "none"), ev, meta: nil, into: &outs).get()
        #expect(outs.isEmpty)
        #expect(h.failure(h.engine.flatMap(try fn(h, "badlist"), ev, meta: nil, into: &outs))?.kind == .badReturn)
        #expect(h.failure(h.engine.flatMap(try fn(h, "notlist"), ev, meta: nil, into: &outs))?.kind == .badReturn)
        #expect(outs.isEmpty)
    }

    @Test func emittedEventsFollowTheReturnedEventInOrder() throws {
        let h = try Harness(["plays.lua": Self.plays])
        #expect(try h.mapOnce(fn(h, "emitter"), #"{"id":"x"}"#) == [#"{"id":"x","seen":true}"#, #"{"n":1}"#, #"{"n":2}"#])
        #expect(try h.mapOnce(fn(h, "emit_only"), #"{"id":"x"}"#) == [#"{"id":"x"}"#])
        let ev = try h.decode("{}")
        var outs: [LuaEventHandle] = []
        try h.engine.flatMap(try fn(h, "flat_emit"), ev, meta: nil, into: &outs).get()
        #expect(try outs.map(h.encode) == [#"{"a":1}"#, #"{"extra":true}"#])
    }

    @Test func emitIsRejectedInFiltersAndDiscardedOnFailure() throws {
        let h = try Harness(["plays.lua": Self.plays])
        let ev = try h.decode("{}")
        let f = h.failure(h.engine.test(try fn(h, "emit_in_filter"), ev, meta: nil))
        #expect(f?.kind == .runtime)
        #expect(f?.message.contains("ctx.emit is only available in map, flat_map and merge") == true)
        var outs: [LuaEventHandle] = []
        #expect(h.failure(h.engine.map(try fn(h, "emit_then_fail"), ev, meta: nil, into: &outs))?.kind == .runtime)
        #expect(outs.isEmpty)
        #expect(try h.mapOnce(fn(h, "emitter"), "{}").count == 3) // nothing left over from the failed call
    }

    @Test func runtimeErrorsCarryMessageAndTraceback() throws {
        let h = try Harness(["plays.lua": Self.plays])
        let ev = try h.decode("{}")
        let f = h.failure(h.engine.test(try fn(h, "boom"), ev, meta: nil))
        #expect(f?.kind == .runtime)
        #expect(f?.message.hasPrefix("udfs/plays.lua:27: attempt to index a nil value") == true)
        #expect(f?.traceback?.contains("stack traceback:") == true)
        #expect(f?.traceback?.contains("udfs/plays.lua:27") == true)
        let t = h.failure(h.engine.test(try fn(h, "raise_table"), ev, meta: nil))
        #expect(t?.message == "(error object is a table value)")
    }

    @Test func ctxMetaExposesEventMetadata() throws {
        let h = try Harness(["plays.lua": Self.plays])
        let meta = EventMeta(key: Array("k1".utf8), timestamp: 1_700_000_000_123,
                             headers: [.init(name: "trace", value: Array("abc".utf8)), .init(name: "n", value: [0x31])],
                             topic: "plays", partition: 3, offset: 99)
        #expect(try h.mapOnce(fn(h, "meta"), "{}", meta: meta)
                == [#"{"key":"k1","n":"1","offset":99,"partition":3,"topic":"plays","trace":"abc","ts":1700000000123}"#])
        // the next call sees its own metadata, not the cached table of the previous call
        #expect(try h.mapOnce(fn(h, "meta"), "{}", meta: EventMeta(offset: 5)) == [#"{"offset":5}"#])
        #expect(try h.mapOnce(fn(h, "meta"), "{}", meta: nil) == ["{}"])
    }

    @Test func ctxNowIsIntegerMillisecondsSinceEpoch() throws {
        let h = try Harness(["plays.lua": Self.plays])
        let out = try h.mapOnce(fn(h, "now"), "{}")[0]
        let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        let now = (obj?["now"] as? NSNumber)?.int64Value ?? 0
        let expected = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(abs(now - expected) < 5000)
        #expect(obj?["type"] as? String == "integer")
    }

    @Test func ctxVersionIsTheEngineVersion() throws {
        let h = try Harness(["plays.lua": Self.plays], version: 7)
        #expect(try h.mapOnce(fn(h, "version"), "{}") == [#"{"v":7}"#])
    }

    @Test func ctxCountAccumulatesUntilTaken() throws {
        let h = try Harness(["plays.lua": Self.plays])
        let ev = try h.decode("{}")
        for _ in 0..<3 { _ = try h.engine.test(fn(h, "count"), ev, meta: nil).get() }
        let taken = Dictionary(uniqueKeysWithValues: h.engine.takeCounters().map { ($0.0, $0.1) })
        #expect(taken == ["seen": 3, "bytes": 30])
        #expect(h.engine.takeCounters().isEmpty)
        _ = try h.engine.test(fn(h, "count"), ev, meta: nil).get()
        #expect(h.engine.takeCounters().count == 2)
    }

    @Test func ctxLogAndPrintGoToTheLogClosure() throws {
        let h = try Harness(["plays.lua": Self.plays])
        _ = try h.engine.test(fn(h, "log"), h.decode(#"{"id":"e9"}"#), meta: nil).get()
        let lines = h.logs.lines
        #expect(lines.count == 2)
        #expect(lines.first.map { $0.0 == "warn" && $0.1 == "careful e9" } == true)
        #expect(lines.last.map { $0.0 == "info" && $0.1 == "p\t1\tnil" } == true)
    }

    @Test func ctxIsReadOnly() throws {
        let h = try Harness(["plays.lua": Self.plays])
        let f = h.failure(h.engine.test(try fn(h, "write_ctx"), try h.decode("{}"), meta: nil))
        #expect(f?.message.contains("ctx is read-only") == true)
    }

    @Test func mapOutputsAreNewHandlesIndependentOfTheInput() throws {
        let h = try Harness(["plays.lua": Self.plays])
        let ev = try h.decode(#"{"id":"x"}"#)
        var outs: [LuaEventHandle] = []
        try h.engine.map(try fn(h, "emitter"), ev, meta: nil, into: &outs).get()
        #expect(!outs.contains(ev))
        h.engine.release(ev)
        #expect(try h.encode(outs[0]) == #"{"id":"x","seen":true}"#)
        outs.forEach(h.engine.release)
        #expect(h.engine.liveHandles == 0)
    }

    @Test func modulesCanRequireSiblingsAndSubdirectories() throws {
        let h = try Harness([
            "main.lua": """
                local util = require("lib.util")
                local again = require "lib.util"
                assert(util == again)
                return { f = function(e) return util.double(e.n) == 4 end }
                """,
            "lib/util.lua": "return { double = function(x) return x * 2 end }",
        ])
        #expect(try h.engine.test(h.engine.function(module: "main", name: "f"), h.decode(#"{"n":2}"#), meta: nil).get())
    }

    @Test func functionLookupsAreCachedPerEngine() throws {
        let h = try Harness(["plays.lua": Self.plays])
        #expect(try fn(h, "is_play") == fn(h, "is_play"))
        #expect(try fn(h, "is_play") != fn(h, "shape"))
    }
}
