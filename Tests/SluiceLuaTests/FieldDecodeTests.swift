import Foundation
import SluiceCore
import Testing
@testable import SluiceLua

/// Decoding only the fields a UDF reads: the table must hold exactly those fields with exactly
/// the values a whole decode gives them, and anything doubtful must fall back to the whole decode.
@Suite struct FieldDecodeTests {
    static let udfs = ["t.lua": """
        local M = {}
        function M.echo(event) return event end
        function M.keep(event, ctx)
          return event.event_type == "play" and (event.duration_ms or 0) > 1000
        end
        function M.shape(event, ctx)
          return { profile_id = event.profile_id, os = event.client.os }
        end
        return M
        """]

    /// The table decoded with `paths`, written back as JSON (keys sorted).
    private func table(_ h: Harness, _ json: String, _ paths: [[String]]) throws -> String {
        let set = try #require(LuaFieldSet(paths))
        let handle = try Array(json.utf8).withUnsafeBytes { try h.engine.decodeJSON($0, fields: set).get() }
        defer { h.engine.release(handle) }
        var outs: [LuaEventHandle] = []
        try h.engine.map(h.engine.function(module: "t", name: "echo"), handle, meta: nil, into: &outs).get()
        defer { outs.forEach(h.engine.release) }
        return try h.encode(try #require(outs.first))
    }

    @Test func onlyTheListedFieldsAreInTheTableWithTheirWholeValues() throws {
        let h = try Harness(Self.udfs)
        let event = #"{"a":1,"b":"x\n\u00e9","c":{"d":[1,{"e":null}],"f":2.5},"g":true,"h":[],"big":123456789012345678901,"neg":-7,"fl":1e2}"#
        #expect(try table(h, event, [["a"]]) == #"{"a":1}"#)
        #expect(try table(h, event, [["b"], ["g"]]) == #"{"b":"x\né","g":true}"#)
        #expect(try table(h, event, [["c", "d"]]) == #"{"c":{"d":[1,{"e":null}]}}"#)
        #expect(try table(h, event, [["c"], ["c", "f"]]) == #"{"c":{"d":[1,{"e":null}],"f":2.5}}"#)
        #expect(try table(h, event, [["h"], ["big"], ["neg"], ["fl"]]) == #"{"big":1.2345678901234568e+20,"fl":100.0,"h":[],"neg":-7}"#)
        #expect(try table(h, event, [["missing"], ["c", "missing"]]) == #"{"c":{}}"#)
        #expect(try table(h, event, []) == "{}")
    }

    @Test func aNonObjectOnTheWayIsDecodedWholeSoReadingThroughItFailsAsBefore() throws {
        let h = try Harness(Self.udfs)
        #expect(try table(h, #"{"c":"text","d":1}"#, [["c", "x"]]) == #"{"c":"text"}"#)
        #expect(try table(h, #"{"c":[1,2],"d":1}"#, [["c", "x"]]) == #"{"c":[1,2]}"#)
        // null reads as nil, as in the whole decode
        #expect(try table(h, #"{"c":null,"d":1}"#, [["c", "x"], ["d"]]) == #"{"d":1}"#)
    }

    @Test func duplicateKeysKeepTheLastValueAsTheWholeDecodeDoes() throws {
        let h = try Harness(Self.udfs)
        #expect(try table(h, #"{"a":1,"a":{"b":2},"a":3}"#, [["a"]]) == #"{"a":3}"#)
        #expect(try table(h, #"{"a":{"b":1},"a":{"c":2}}"#, [["a", "b"], ["a", "c"]]) == #"{"a":{"c":2}}"#)
    }

    @Test func invalidEventsFailWithTheWholeDecodesMessage() throws {
        let h = try Harness(Self.udfs)
        let set = try #require(LuaFieldSet([["a"]]))
        for bad in [#"{"a":1,"b":}"#, #"{"a":"\ud800"}"#, "{\"a\":\"\u{1}\"}", #"{"a":1} x"#, #"{"a":01}"#] {
            let whole = h.failure(h.engine.decodeJSON(Array(bad.utf8)))
            let fields = h.failure(Array(bad.utf8).withUnsafeBytes { h.engine.decodeJSON($0, fields: set) })
            #expect(whole != nil && fields?.message == whole?.message, "\(bad)")
        }
        // Not an object: decoded whole.
        let array = try Array("[1,2]".utf8).withUnsafeBytes { try h.engine.decodeJSON($0, fields: set).get() }
        #expect(try h.encode(array) == "[1,2]")
    }

    @Test func theEngineFindsWhatItsFunctionsRead() throws {
        let h = try Harness(Self.udfs)
        #expect(h.engine.fieldsRead(by: try h.engine.function(module: "t", name: "keep")) == [["duration_ms"], ["event_type"]])
        #expect(h.engine.fieldsRead(by: try h.engine.function(module: "t", name: "shape")) == [["profile_id"], ["client", "os"]])
        #expect(h.engine.fieldsRead(by: try h.engine.function(module: "t", name: "echo")) == nil)
        #expect(h.engine.fieldsRead(by: try h.engine.expression("event.n > 1 and event.c.d", label: "x")) == [["n"], ["c", "d"]])
        #expect(h.engine.fieldsRead(by: try h.engine.expression("event", label: "y")) == nil)
    }

    // MARK: - Tables kept for the next event

    static let dumpUDFs = ["d.lua": """
        local M = {}
        -- Every key and value of the event, nested tables too, sorted: what a reused table holds.
        local function dump(t)
          if type(t) ~= "table" then return tostring(t) end
          local keys = {}
          for k in pairs(t) do keys[#keys + 1] = tostring(k) end
          table.sort(keys)
          local parts = {}
          for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. dump(t[k] == nil and t[tonumber(k)] or t[k]) end
          return "{" .. table.concat(parts, ",") .. "}"
        end
        function M.dump(event) return { s = dump(event), id = tostring(event) } end
        function M.echo(event) return event end
        return M
        """]

    /// (contents, table identity) of `h` as the UDF sees it.
    private func seen(_ h: Harness, _ handle: LuaEventHandle) throws -> (String, String) {
        var outs: [LuaEventHandle] = []
        try h.engine.map(h.engine.function(module: "d", name: "dump"), handle, meta: nil, into: &outs).get()
        defer { outs.forEach(h.engine.release) }
        let json = try h.encode(try #require(outs.first))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
        return (object["s"] ?? "", object["id"] ?? "")
    }

    private func decode(_ h: Harness, _ json: String, _ set: LuaFieldSet) throws -> LuaEventHandle {
        try Array(json.utf8).withUnsafeBytes { try h.engine.decodeJSON($0, fields: set).get() }
    }

    @Test func theNextEventReusesTheTablesAndNothingOfTheLastOneIsLeft() throws {
        let h = try Harness(Self.dumpUDFs)
        let set = try #require(LuaFieldSet([["a"], ["c", "d"], ["c", "e"], ["f"]]))
        let events: [(String, String)] = [
            (#"{"a":1,"c":{"d":2,"e":3},"f":"x","z":9}"#, "{a=1,c={d=2,e=3},f=x}"),
            (#"{"c":{"e":4}}"#, "{c={e=4}}"),
            (#"{"c":"str","a":5}"#, "{a=5,c=str}"),
            (#"{"c":{}}"#, "{c={}}"),               // the kept table of `c` still held e=4
            (#"{"a":null,"f":true,"c":{"d":[1,2]}}"#, "{c={d={1=1,2=2}},f=true}"),
            (#"{"a":"\u00e9","c":{"d":null,"e":{"x":1}}}"#, "{a=é,c={e={x=1}}}"),
            ("[1]", "{1=1}"),                        // not an object: decoded whole
            (#"{"f":false}"#, "{f=false}"),
        ]
        var identities: Set<String> = []
        for (json, expected) in events {
            let handle = try decode(h, json, set)
            let (contents, id) = try seen(h, handle)
            #expect(contents == expected, "\(json)")
            if json.hasPrefix("{") { identities.insert(id) }
            h.engine.release(handle)
        }
        #expect(identities.count == 1, "the event table is made once and reused: \(identities)")
    }

    @Test func aTableStillHeldByALiveHandleIsNotReused() throws {
        let h = try Harness(Self.dumpUDFs)
        let set = try #require(LuaFieldSet([["a"]]))
        let first = try decode(h, #"{"a":1}"#, set)
        let second = try decode(h, #"{"a":2}"#, set)
        let (c1, id1) = try seen(h, first), (c2, id2) = try seen(h, second)
        #expect(c1 == "{a=1}" && c2 == "{a=2}" && id1 != id2)
        h.engine.release(second)
        let third = try decode(h, #"{"b":3}"#, set)
        #expect(try seen(h, first).0 == "{a=1}")
        #expect(try seen(h, third).0 == "{}")
        h.engine.release(first)
        let fourth = try decode(h, #"{"a":4}"#, set)
        #expect(try seen(h, fourth) == ("{a=4}", id1))   // the kept table, free again
        #expect(try seen(h, third).0 == "{}")
        h.engine.release(third); h.engine.release(fourth)
    }

    @Test func aTableThatOutlivesItsHandleIsGivenUp() throws {
        let h = try Harness(Self.dumpUDFs)
        let set = try #require(LuaFieldSet([["a"]]))
        // A map that returns its event: the output handle holds the table too.
        let first = try decode(h, #"{"a":1}"#, set)
        var outs: [LuaEventHandle] = []
        try h.engine.map(h.engine.function(module: "d", name: "echo"), first, meta: nil, into: &outs).get()
        h.engine.release(first)
        let second = try decode(h, #"{"a":2}"#, set)
        #expect(try seen(h, try #require(outs.first)).0 == "{a=1}")
        #expect(try seen(h, second).0 == "{a=2}")
        h.engine.release(second); outs.forEach(h.engine.release)
        // A list of events (as a stateful transform makes): the list holds the table.
        let third = try decode(h, #"{"a":3}"#, set)
        let list = try h.engine.list([third]).get()
        h.engine.release(third)
        let fourth = try decode(h, #"{"a":4}"#, set)
        #expect(try h.encode(list) == #"[{"a":3}]"#)
        #expect(try seen(h, fourth).0 == "{a=4}")
        h.engine.release(fourth); h.engine.release(list)
    }

}
