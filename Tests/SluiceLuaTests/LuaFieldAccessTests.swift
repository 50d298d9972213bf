import Testing
@testable import SluiceLua

/// The field analysis decides what a UDF's event table holds: a wrong "only these fields" would
/// make a UDF read nil where the event has a value, so every doubtful use must give nil.
@Suite struct LuaFieldAccessTests {
    /// The fields of the function starting on the first line of `body` (and ending on its last).
    private func fields(_ body: String) -> [[String]]? {
        let lines = body.split(separator: "\n", omittingEmptySubsequences: false).count
        return LuaFieldAccess.fields(source: body, firstLine: 1, lastLine: lines)
    }

    @Test func theW1FunctionsReadOnlyTheirFields() {
        #expect(fields("""
            function M.keep(event, ctx)
              return event.event_type == "play" and (event.duration_ms or 0) > 1000
            end
            """) == [["duration_ms"], ["event_type"]])
        #expect(fields("""
            function M.shape(event, ctx)
              return { profile_id = event.profile_id, title_id = event.title_id, ts = event.ts,
                       country = event.country, os = event.client.os }
            end
            """) == [["country"], ["profile_id"], ["title_id"], ["ts"], ["client", "os"]])
    }

    @Test func aChainIsReadWholeAndCoversLongerOnes() {
        #expect(fields("function M.f(e)\n  local c = e.client\n  return e.client.os == c.os\nend") == [["client"]])
        #expect(fields("function M.f(e) return e.tags[1] == 'x' and e.name:lower() == 'y' end") == [["name"], ["tags"]])
        #expect(fields("function M.f(e) return { e = e.a, [1] = e.b } end") == [["a"], ["b"]])
        #expect(fields("function M:f(e) return self.x end") == [["x"]])
        #expect(fields("M.f = function(event) return event.a end") == [["a"]])
        #expect(fields("function M.f() return 1 end") == [])
    }

    @Test func wordsInStringsAndCommentsAreNotUses() {
        #expect(fields("""
            function M.f(event) -- return event
              --[[ pairs(event) ]] local s = "event" .. 'event' .. [[event]] .. [==[ event ]==]
              return event.a ~= s
            end
            """) == [["a"]])
    }

    @Test(arguments: [
        "function M.f(event) return event end",
        "function M.f(event) return helper(event) end",
        "function M.f(event) for k in pairs(event) do end end",
        "function M.f(event) local e = event return e.a end",
        "function M.f(event) return event[k] end",
        "function M.f(event) return event['a'] end",
        "function M.f(event) event.a = 1 end",
        "function M.f(event) event.a.b = 1 return true end",
        "function M.f(event) event.a, x = 1, 2 end",
        "function M.f(event) local x, y = event.a, 2 return x end",
        "function M.f(event) return event:method() end",
        "function M.f(event) return #event end",
        "function M.f(...) local event = ... return event.a end",
        "function M.f(event) return (function(...) return ... end)(1) end",
        "function M.f(event) return (function(event) return event.a end)({}) end",
        "function M.f(event) local t = { g = function() event.a, y = 1, 2 end } return t end",
        "function M.f(event) ctx.emit(event) end",
        // (a nested function on a line of its own: only one function may start on the first line)
        "function M.f(event)\n later = function() return event.a end\n return true\nend",
        "function M.f(event)\n return coroutine.wrap(function() return event.ip end)()\nend",
        "function M.f(event)\n local function g() return event.a.b end\n return g()\nend",
        "function M.f(event) return event.a end function M.g(event) return event end",
    ])
    func doubtfulUsesDecodeEverything(_ source: String) {
        #expect(fields(source) == nil, "\(source)")
    }

    @Test func theFunctionMustEndWhereLuaSaysItEnds() {
        #expect(LuaFieldAccess.fields(source: "function M.f(e) return e.a end\n", firstLine: 1, lastLine: 2) == nil)
        #expect(LuaFieldAccess.fields(source: "local M = {}\nfunction M.f(e)\n  if e.a then return e.b end\n  return e.c\nend\nreturn M",
                                      firstLine: 2, lastLine: 5) == [["a"], ["b"], ["c"]])
    }
}
