import Foundation
import SluiceCore
import Testing
@testable import SluiceLua

@Suite struct SandboxTests {
    /// Runs `body` as a filter function body; returns the failure (nil if it succeeded).
    func attempt(_ body: String, files: [String: String] = [:]) throws -> LuaFailure? {
        var all = files
        all["esc.lua"] = "return { f = function(event, ctx)\n\(body)\nend }"
        let h = try Harness(all)
        let f = try h.engine.function(module: "esc", name: "f")
        return h.failure(h.engine.test(f, try h.decode("{}"), meta: nil))
    }

    @Test(arguments: [
        #"return io.open("/etc/passwd")"#,
        #"return os.execute("touch /tmp/sluice-escape-marker")"#,
        "return os.exit(1)",
        #"return os.getenv("HOME")"#,
        #"return os.remove("/tmp/sluice-escape-marker")"#,
        #"return require("os").execute("true")"#,
        #"return require("io")"#,
        #"return require("../x")"#,
        #"return require("/etc/passwd")"#,
        #"return require("a..b")"#,
        #"return package.loadlib("libc.so.6", "system")"#,
        "return load(string.dump(function() end))",
        #"return ("").dump(function() end)"#,
        #"return getmetatable("").__index.dump(function() end)"#,
        #"return assert(load("\27LuaT\0\25\147\13\10\26\10", "x", "b"))"#,
        #"local s = "\27Lua"; return assert(load(function() local r = s; s = nil; return r end))"#,
        "return debug.getregistry()",
        "pcall(setmetatable, _G, nil); return io.open('/etc/passwd')",
        "setmetatable(_G, nil)",
        "return dofile('/etc/passwd')",
        "return loadfile('/etc/passwd')",
        "return rawset(_G, 'x', 1)",
        "return setmetatable({}, { __gc = function() end })",
        "return load('return io', 'x', 't', {})().open('/etc/passwd')",
        "return collectgarbage.io",
    ])
    func sandboxEscapesFail(_ body: String) throws {
        let f = try attempt(body)
        #expect(f != nil, "\(body) succeeded")
        #expect(f?.kind == .runtime)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/sluice-escape-marker"))
    }

    @Test func requireStaysInsideTheUDFDirectory() throws {
        // a module beside (not inside) udfs must not be reachable
        let h = try Harness()
        try "return { pwned = true }".write(toFile: h.dir.root + "/x.lua", atomically: true, encoding: .utf8)
        try "return require('../x')".write(toFile: h.dir.path + "/esc.lua", atomically: true, encoding: .utf8)
        #expect(throws: LuaLoadError.self) { try h.engine.function(module: "esc", name: "f") }
        #expect(throws: LuaLoadError.self) { try h.engine.function(module: "../x", name: "pwned") }
    }

    @Test func globalsOfTheSandboxAreExactlyTheWhitelist() throws {
        let h = try Harness()
        let f = try h.engine.expression("""
            (function()
              local names = {}
              for k in pairs(_G) do names[#names + 1] = k end
              table.sort(names)
              return table.concat(names, " ")
            end)() == "_G _VERSION array assert collectgarbage coroutine error getmetatable ipairs load math next null os pairs pcall print rawequal rawget rawlen require select setmetatable string table tonumber tostring type utf8 xpcall"
            """, label: "globals")
        #expect(try h.engine.test(f, h.decode("{}"), meta: nil).get())
        let os = try h.engine.expression(#"os.time and os.clock and os.date and os.execute == nil and os.getenv == nil"#, label: "os")
        #expect(try h.engine.test(os, h.decode("{}"), meta: nil).get())
        let dump = try h.engine.expression(#"string.dump == nil and ("").dump == nil"#, label: "dump")
        #expect(try h.engine.test(dump, h.decode("{}"), meta: nil).get())
    }

    @Test func collectGarbageStopIsHarmless() throws {
        let h = try Harness(["g.lua": """
            return {
              stop = function() return collectgarbage("stop") == 0 end,
              churn = function() for i = 1, 2000 do local t = { i, tostring(i) } end return true end,
              count = function() return collectgarbage("count") > 0 end,
            }
            """], limits: LuaLimits(instructions: 10_000_000, memoryBytes: 4 << 20))
        let ev = try h.decode("{}")
        #expect(try h.engine.test(h.engine.function(module: "g", name: "stop"), ev, meta: nil).get())
        for _ in 0..<500 { #expect(try h.engine.test(h.engine.function(module: "g", name: "churn"), ev, meta: nil).get()) }
        #expect(!h.engine.isPoisoned)
        #expect(try h.engine.test(h.engine.function(module: "g", name: "count"), ev, meta: nil).get())
    }

    @Test func loadOfTextChunksWorksInTheSandbox() throws {
        let h = try Harness(["l.lua": """
            return { f = function(e)
              local g = assert(load("return 1 + x", "chunk", "t", { x = 41 }))
              local h = assert(load("return type(io) .. type(string)"))
              return g() == 42 and h() == "niltable"
            end }
            """])
        #expect(try h.engine.test(h.engine.function(module: "l", name: "f"), h.decode("{}"), meta: nil).get())
    }

    @Test func modulesShareOneSandboxEnvironmentPerEngineButNotAcrossEngines() throws {
        let files = ["a.lua": "shared = 1\nreturn { f = function() return shared == 1 end }",
                     "b.lua": "return { f = function() return shared == 1 end }"]
        let h1 = try Harness(files)
        _ = try h1.engine.function(module: "a", name: "f")
        #expect(try h1.engine.test(h1.engine.function(module: "b", name: "f"), h1.decode("{}"), meta: nil).get())
        let h2 = try Harness(files)
        #expect(try !h2.engine.test(h2.engine.function(module: "b", name: "f"), h2.decode("{}"), meta: nil).get())
    }
}
