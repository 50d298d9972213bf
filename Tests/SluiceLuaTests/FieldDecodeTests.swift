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
}
