import Foundation
import SluiceCore
import Testing
@testable import SluiceLua

@Suite struct LimitsTests {
    static let limits = LuaLimits(instructions: 1_000_000, memoryBytes: 32 << 20)

    /// Runs `body` as a filter in a fresh engine; returns the failure and whether the engine is poisoned.
    func run(_ body: String, limits: LuaLimits = limits) throws -> (LuaFailure?, Bool, LuaEngine, Harness) {
        let h = try Harness(["r.lua": "return { f = function(event, ctx)\n\(body)\nend, ok = function() return true end }"],
                            limits: limits)
        let f = try h.engine.function(module: "r", name: "f")
        let ev = try h.decode(#"{"a":1}"#)
        let failure = h.failure(h.engine.test(f, ev, meta: nil))
        return (failure, h.engine.isPoisoned, h.engine, h)
    }

    /// A fresh engine works after a failure, and so does the old one unless it is poisoned.
    func expectRecovery(_ h: Harness) throws {
        let fresh = try Harness(["r.lua": "return { ok = function(e) return e.a == 1 end }"], limits: Self.limits)
        #expect(try fresh.engine.test(fresh.engine.function(module: "r", name: "ok"), fresh.decode(#"{"a":1}"#), meta: nil).get())
        if !h.engine.isPoisoned {
            #expect(try h.engine.test(h.engine.function(module: "r", name: "ok"), h.decode("{}"), meta: nil).get())
        }
    }

    @Test func anInfiniteLoopIsStopped() throws {
        let (f, poisoned, _, h) = try run("while true do end")
        #expect(f?.kind == .instructionLimit)
        #expect(f?.message.contains("instruction limit exceeded") == true)
        #expect(!poisoned)
        try expectRecovery(h)
    }

    @Test func anInfiniteLoopInsidePcallIsStopped() throws {
        let (f, _, _, h) = try run("while true do pcall(function() while true do end end) end")
        #expect(f?.kind == .instructionLimit)
        try expectRecovery(h)
    }

    @Test func xpcallWithALoopingHandlerIsStopped() throws {
        let (f, _, _, h) = try run("""
            while true do xpcall(function() while true do end end, function(m) while true do end end) end
            """)
        #expect(f?.kind == .instructionLimit)
        try expectRecovery(h)
    }

    @Test func spreadingWorkOverCoroutinesIsStopped() throws {
        let (f, _, _, h) = try run("""
            while true do
              local co = coroutine.wrap(function() for i = 1, 900 do end end)
              co()
            end
            """)
        #expect(f?.kind == .instructionLimit)
        try expectRecovery(h)
    }

    @Test func aLoopInsideACoroutineIsStopped() throws {
        let (f, _, _, h) = try run("""
            local co = coroutine.create(function() while true do end end)
            while true do coroutine.resume(co) end
            """)
        #expect(f?.kind == .instructionLimit)
        try expectRecovery(h)
    }

    @Test func theBudgetIsPerCall() throws {
        let h = try Harness(["r.lua": "return { f = function() for i = 1, 300000 do end return true end }"],
                            limits: LuaLimits(instructions: 1_000_000, memoryBytes: 16 << 20))
        let f = try h.engine.function(module: "r", name: "f")
        let ev = try h.decode("{}")
        for _ in 0..<10 { #expect(try h.engine.test(f, ev, meta: nil).get()) }
    }

    @Test func stringRepBombHitsTheMemoryLimit() throws {
        let (f, poisoned, engine, h) = try run(#"local s = string.rep("x", 1e9) return #s > 0"#)
        #expect(f?.kind == .memoryLimit)
        #expect(poisoned)
        #expect(engine.isPoisoned)
        // a poisoned engine refuses further work
        #expect(h.failure(engine.decodeJSON(Array("{}".utf8)))?.kind == .memoryLimit)
        try expectRecovery(h)
    }

    @Test func aMemoryBombInsidePcallStillFailsAndPoisons() throws {
        let (f, poisoned, _, h) = try run(#"local ok = pcall(string.rep, "x", 1e9) return not ok"#)
        #expect(f?.kind == .memoryLimit)
        #expect(poisoned)
        try expectRecovery(h)
    }

    @Test func aGrowingTableHitsTheMemoryLimit() throws {
        let (f, poisoned, _, h) = try run("""
            local t = {}
            for i = 1, 1e9 do t[i] = { i } end
            """, limits: LuaLimits(instructions: 100_000_000, memoryBytes: 8 << 20))
        #expect(f?.kind == .memoryLimit)
        #expect(poisoned)
        try expectRecovery(h)
    }

    @Test func deepRecursionFailsCleanly() throws {
        let (f, _, _, h) = try run("""
            local function down(n) return 1 + down(n + 1) end
            return down(1)
            """, limits: LuaLimits(instructions: 50_000_000, memoryBytes: 64 << 20))
        #expect(f != nil)
        try expectRecovery(h)
    }

    @Test func deepRecursionThroughCFunctionsFailsCleanly() throws {
        let (f, _, _, h) = try run("""
            local function down(s) return (string.gsub(s, ".", down)) end
            return down("x")
            """)
        #expect(f?.kind == .runtime)
        try expectRecovery(h)
    }

    @Test func memoryInUseIsReportedAndBounded() throws {
        let h = try Harness(limits: LuaLimits(instructions: 1000, memoryBytes: 2 << 20))
        #expect(h.engine.memoryInUse > 0)
        #expect(h.engine.memoryInUse < 2 << 20)
    }

    @Test func aTooSmallMemoryLimitFailsToBuildTheEngine() throws {
        let dir = try UDFDir()
        #expect(throws: LuaLoadError.self) {
            _ = try LuaEngine(udfDir: dir.path, limits: LuaLimits(instructions: 1000, memoryBytes: 4096), log: { _, _ in })
        }
    }
}

@Suite struct LoadingTests {
    @Test func aSyntaxErrorReportsFileAndLine() throws {
        let h = try Harness(["bad.lua": "local M = {}\n\nfunction M.f(event)\n  return event.x ==\nend\nreturn M\n"])
        do {
            _ = try h.engine.function(module: "bad", name: "f")
            Issue.record("loaded a module with a syntax error")
        } catch {
            #expect(error.file == "udfs/bad.lua")
            #expect(error.line == 5)
            #expect(error.path == h.dir.path + "/bad.lua")
            #expect(error.description.hasPrefix("udfs/bad.lua:5: unexpected symbol near 'end'"))
        }
    }

    @Test func aRuntimeErrorAtLoadReportsFileAndLine() throws {
        let h = try Harness(["boom.lua": "local M = {}\nerror('load failed')\nreturn M\n"])
        do {
            _ = try h.engine.function(module: "boom", name: "f")
            Issue.record("loaded")
        } catch {
            #expect(error.description == "udfs/boom.lua:2: load failed")
        }
    }

    @Test func anErrorInANestedModuleNamesThatModule() throws {
        let h = try Harness(["top.lua": "local u = require('lib.u')\nreturn {}",
                             "lib/u.lua": "\n\nlocal x = = 1"])
        do {
            _ = try h.engine.function(module: "top", name: "f")
            Issue.record("loaded")
        } catch {
            #expect(error.file == "udfs/lib/u.lua")
            #expect(error.line == 3)
        }
    }

    @Test func aMissingModuleOrFunctionIsReported() throws {
        let h = try Harness(["m.lua": "return { n = 1, f = function() end }", "notable.lua": "return 5"])
        #expect { try h.engine.function(module: "nope", name: "f") } throws: { e in
            (e as? LuaLoadError)?.description == "udfs/nope.lua: module 'nope' not found (udfs/nope.lua)"
        }
        #expect { try h.engine.function(module: "m", name: "missing") } throws: { e in
            (e as? LuaLoadError)?.message == "'missing' is not a function in module 'm' (got nil)"
        }
        #expect { try h.engine.function(module: "m", name: "n") } throws: { e in
            (e as? LuaLoadError)?.message.contains("got number") == true
        }
        #expect { try h.engine.function(module: "notable", name: "f") } throws: { e in
            (e as? LuaLoadError)?.message.contains("must return a table") == true
        }
        #expect(try h.engine.function(module: "m", name: "f").rawValue > 0)
    }

    @Test func requireLoopsAreReported() throws {
        let h = try Harness(["a.lua": "require('b') return {}", "b.lua": "require('a') return {}"])
        #expect { try h.engine.function(module: "a", name: "f") } throws: { e in
            (e as? LuaLoadError)?.message.contains("loop while loading module 'a'") == true
        }
    }

    @Test func anExpressionWithASyntaxErrorIsALoadError() throws {
        let h = try Harness()
        do {
            _ = try h.engine.expression("event.x ==", label: "transform 'bad'")
            Issue.record("compiled")
        } catch {
            #expect(error.module == "transform 'bad'")
            #expect(error.description.hasPrefix("transform 'bad':"))
        }
    }

    @Test func anInfiniteLoopAtModuleLoadIsStopped() throws {
        let h = try Harness(["spin.lua": "while true do end"], limits: LuaLimits(instructions: 100_000, memoryBytes: 16 << 20))
        #expect { try h.engine.function(module: "spin", name: "f") } throws: { e in
            (e as? LuaLoadError)?.message.contains("instruction limit exceeded") == true
        }
    }

    @Test func splitLocationParsesFileAndLine() {
        #expect(LuaEngine.splitLocation("udfs/a.lua:12: oops: x") == nil ? false : true)
        let parts = LuaEngine.splitLocation("udfs/a.lua:12: oops: x")
        #expect(parts?.0 == "udfs/a.lua")
        #expect(parts?.1 == 12)
        #expect(parts?.2 == "oops: x")
        #expect(LuaEngine.splitLocation("module 'x' not found") == nil)
    }
}
