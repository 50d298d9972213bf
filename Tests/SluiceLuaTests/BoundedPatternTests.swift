import Foundation
import Testing
@testable import SluiceLua

/// The sandbox's string.find / match / gmatch / gsub are our own matcher with every step charged
/// to the instruction budget (Lua's C matcher runs outside the count hook), and string.rep checks
/// its size first. Results must be those of stock Lua 5.4.
@Suite struct BoundedPatternTests {
    /// Runs `body` (the inside of `function(event, ctx)`) as a filter; returns the failure, if any.
    func run(_ body: String, limits: LuaLimits = LuaLimits(instructions: 1_000_000, memoryBytes: 32 << 20)) throws -> LuaFailure? {
        let h = try Harness(["r.lua": "return { f = function(event, ctx)\n\(body)\nend }"], limits: limits)
        let f = try h.engine.function(module: "r", name: "f")
        return h.failure(h.engine.test(f, try h.decode("{}"), meta: nil))
    }

    static let bomb = #"string.rep("a", 30) .. "b", ("a*"):rep(30) .. "c""#

    @Test(arguments: [
        "return string.find(\(bomb))",
        "return string.match(\(bomb))",
        "for _ in string.gmatch(\(bomb)) do end return true",
        "return (string.gsub(\(bomb), \"x\"))",
        "return (\"\" .. string.rep(\"a\", 30) .. \"b\"):find((\"a*\"):rep(30) .. \"c\")",
        "local ok = pcall(string.find, \(bomb)); return ok",
        "return string.find(string.rep(\"a\", 25) .. \"b\", (\"a-\"):rep(25) .. \"c\")",
    ])
    func aPathologicalPatternIsStoppedByTheInstructionLimit(body: String) throws {
        let start = ContinuousClock.now
        let f = try run(body)
        #expect(f?.kind == .instructionLimit, "\(String(describing: f))")
        #expect(ContinuousClock.now - start < .seconds(30), "a budget of 1M instructions took minutes")
    }

    @Test func repChecksItsSizeBeforeBuildingTheString() throws {
        let start = ContinuousClock.now
        let f = try run("return #string.rep(\"x\", 1e12) > 0")
        #expect(f?.kind == .memoryLimit, "\(String(describing: f))")
        let sep = try run("local ok = pcall(string.rep, \"x\", 1e6, (\"y\"):rep(1000)) return not ok")
        #expect(sep?.kind == .memoryLimit, "\(String(describing: sep))")
        let wrapped = try run("return #string.rep(\"xy\", math.maxinteger) > 0")
        #expect(wrapped?.kind == .memoryLimit, "\(String(describing: wrapped))")
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(try run("assert(string.rep(\"ab\", 3, \",\") == \"ab,ab,ab\"); return true") == nil)
        // Stock rep loops n times even for empty pieces, outside the hook: this must return at once.
        let repStart = ContinuousClock.now
        #expect(try run("assert(string.rep(\"\", math.maxinteger) == \"\"); return true") == nil)
        #expect(ContinuousClock.now - repStart < .seconds(10))
    }

    @Test func manyCheapMatchesAreChargedToo() throws {
        // Each call is cheap, but a loop of them must still end at the limit, and a small
        // budget must be enough for ordinary use.
        let f = try run("local s = string.rep(\"ab\", 1000) while true do s:gsub(\"a\", \"b\") end")
        #expect(f?.kind == .instructionLimit)
        #expect(try run("return (\"key=value\"):match(\"(%w+)=(%w+)\") == \"key\"", limits: LuaLimits(instructions: 1_000)) == nil)
    }

    /// The corpus below was run with stock `lua5.4` to produce `expected`: ours must agree on
    /// every result and every error message.
    @Test func resultsAndErrorsMatchStockLua54() throws {
        let module = "local M = {}\nlocal function corpus()\n" + Self.corpus + "\nend\nfunction M.f(e) e.out = corpus() return e end\nreturn M\n"
        let h = try Harness(["c.lua": module])
        let f = try h.engine.function(module: "c", name: "f")
        let out = try h.mapOnce(f, "{}")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(out[0].utf8)) as? [String: Any])
        let got = try #require(object["out"] as? String)
        let gotLines = got.components(separatedBy: "\n"), wantLines = Self.expected.components(separatedBy: "\n")
        for (i, (g, w)) in zip(gotLines, wantLines).enumerated() where g != w {
            Issue.record("line \(i + 1): got \(g), stock Lua gives \(w)")
        }
        #expect(gotLines.count == wantLines.count)
    }

    static let corpus = ##"""
local out = {}
local function show(...)
  local n = select("#", ...)
  local t = {}
  for i = 1, n do local v = select(i, ...); t[#t + 1] = type(v) == "string" and string.format("%q", v) or tostring(v) end
  out[#out + 1] = table.concat(t, ",")
end
local function try(f, ...) local r = table.pack(pcall(f, ...)); if r[1] then show(table.unpack(r, 2, r.n)) else show("ERR", (tostring(r[2]):gsub("^.-:%d+: ", ""))) end end
local F = {
  {"hello world", "o"}, {"hello world", "o", 6}, {"hello world", "o", -3}, {"hello world", "l+"}, {"hello", ""}, {"hello", "", 10}, {"hello", "", 6},
  {"hello", "^h"}, {"hello", "^e"}, {"hello", "o$"}, {"hello", "l$"}, {"a.b", ".", 1, true}, {"a.b", "%."}, {"key = value", "(%w+)%s*=%s*(%w+)"},
  {"  trim  ", "^%s*(.-)%s*$"}, {"THE (quick) fox", "%((%a+)%)"}, {"f(a(b)c)d", "%b()"}, {"THE (quick) fox", "%f[%a]%a+"}, {"hello", "()ll()"},
  {"abcabc", "(a)(b)(c)%1"}, {"x=1, y=2", "(%a)=(%d)"}, {"[test]", "[%[%]]"}, {"a-b", "[a-]"}, {"123abc", "[^%d]+"}, {"x]y", "[]]"}, {"x^y", "[x^]+"},
  {"aaa", "a-b"}, {"aaab", "a-b"}, {"aaa", "a?a?a?a"}, {"date: 2024-01-02", "(%d+)-(%d+)-(%d+)"}, {"café", "[\128-\255]+"}, {"a\0b", "%z"}, {"a\0b", "\0"},
  {"hello", "(h)(e)(l)(l)(o)"}, {"hello", "%w%W"}, {"x", "%"}, {"x", "[a"}, {"x", "(x"}, {"x", "x)"}, {"x", "%1"}, {"x", "%b"}, {"x", "%fx"}, {"ab", "%g+"},
  {"A1_b", "%u%d%p%l"}, {"\t\n x", "%c+"}, {"ff0A", "%x+"}, {"abc", ".-$"}, {"abc", "b*"}, {"", "a*"}, {"", "^$"}, {"abc", "[%a-z]+"}, {"a+b", "a+b", 1, true},
}
for _, c in ipairs(F) do try(string.find, table.unpack(c)) end
for _, c in ipairs(F) do try(string.match, c[1], c[2], c[3]) end
for _, c in ipairs({{"one two  three", "%a+"}, {"k1=v1;k2=v2", "(%w+)=(%w+)"}, {"abc", ""}, {"aaa", "a*"}, {"hello", "()l"}, {"abcabc", "b", 3}}) do
  local parts = {}
  for a, b in string.gmatch(c[1], c[2], c[3]) do parts[#parts + 1] = tostring(a) .. "|" .. tostring(b) end
  show(table.concat(parts, " "))
end
local G = {
  {"hello world", "o", "0"}, {"hello world", "(o)", "[%1]"}, {"hello world", "%w+", "%0 %0"}, {"hello", "", "-"}, {"abc", "%w", "%%"}, {"hello world", "o", "0", 1},
  {"$name is $age", "%$(%w+)", {name = "Bob", age = 42}}, {"$name is $x", "%$(%w+)", {name = "Bob"}}, {"abc", "%w", function(c) return c:upper() .. "." end},
  {"abc", "%w", function(c) if c == "b" then return false end return "x" end}, {"abc", "^a", "A"}, {"aaa", "^a", "A"}, {"abc", "b*", "-"}, {"abc", "(b)", "%2"},
  {"abc", "b", "%x"}, {"abc", "b", {b = {}}}, {"abc", "()", "%1"}, {"hello", "l+", function(s) return #s end}, {"x y", "%s", 7}, {"hello", "l", "L", 0}, {"hello", "l", "L", -1},
}
for _, c in ipairs(G) do try(string.gsub, table.unpack(c)) end
try(string.rep, "ab", 3, ",") ; try(string.rep, "x", 0) ; try(string.rep, "x", -1); try(string.rep, "", 1e9)
show(("x"):find("x"), ("abc"):match("b(.)"), ("a,b"):gsub(",", ";"))
return table.concat(out, "\n")
"""##

    static let expected = ##"""
5,5
8,8
nil
3,4
1,0
nil
6,5
1,1
nil
5,5
nil
2,2
2,2
1,11,"key","value"
1,8,"trim"
5,11,"quick"
2,8
1,3
3,4,3,5
1,4,"a","b","c"
1,3,"x","1"
1,1
1,1
4,6
2,2
1,2
nil
1,4
1,3
7,16,"2024","01","02"
4,5
2,2
2,2
1,5,"h","e","l","l","o"
nil
"ERR","malformed pattern (ends with '%')"
"ERR","malformed pattern (missing ']')"
"ERR","unfinished capture"
nil
"ERR","invalid capture index %1"
"ERR","malformed pattern (missing arguments to '%b')"
"ERR","missing '[' after '%f' in pattern"
1,2
1,4
1,2
1,4
1,3
1,0
1,0
1,0
1,3
1,3
"o"
"o"
nil
"ll"
""
nil
""
"h"
nil
"o"
nil
"a"
"."
"key","value"
"trim"
"quick"
"(a(b)c)"
"THE"
3,5
"a","b","c"
"x","1"
"["
"a"
"abc"
"]"
"x^"
nil
"aaab"
"aaa"
"2024","01","02"
"é"
"\0"
"\0"
"h","e","l","l","o"
nil
"ERR","malformed pattern (ends with '%')"
"ERR","malformed pattern (missing ']')"
"ERR","unfinished capture"
"ERR","invalid pattern capture"
"ERR","invalid capture index %1"
"ERR","malformed pattern (missing arguments to '%b')"
"ERR","missing '[' after '%f' in pattern"
"ab"
"A1_b"
"\9\
"
"ff0A"
"abc"
""
""
""
"abc"
nil
"one|nil two|nil three|nil"
"k1|v1 k2|v2"
"|nil |nil |nil |nil"
"aaa|nil"
"3|nil 4|nil"
"b|nil"
"hell0 w0rld",2
"hell[o] w[o]rld",2
"hello hello world world",2
"-h-e-l-l-o-",6
"%%%",3
"hell0 world",1
"Bob is 42",2
"Bob is $x",2
"A.B.C.",3
"xbx",3
"Abc",1
"Aaa",1
"-a-c-",3
"ERR","invalid capture index %2"
"ERR","invalid use of '%' in replacement string"
"ERR","invalid replacement value (a table)"
"1a2b3c4",4
"he2o",1
"x7y",1
"hello",0
"hello",0
"ab,ab,ab"
""
""
""
1,"c","a;b",1
"""##
}
