import Testing
@testable import SluiceCore

private func field(_ output: String, _ path: String) -> ProjectField {
    ProjectField(output: output, path: path.split(separator: ".", omittingEmptySubsequences: false).map(String.init))
}

private func project(_ event: String, _ fields: ProjectField...) -> String {
    String(decoding: CompiledProjection(fields).apply(Array(event.utf8)), as: UTF8.self)
}

@Suite("CompiledProjection")
struct CompiledProjectionTests {
    let line = #"{"event_id":"e000000000","event_type":"play","profile_id":"p006556","title_id":9013,"ts":1699999998034,"duration_ms":6177968,"device":"tv","country":"KR","client":{"app_version":"2.18.54","os":"android"},"tags":[]}"#

    @Test("W1 projection, byte for byte")
    func w1() {
        let out = project(line, field("profile_id", "profile_id"), field("title_id", "title_id"), field("ts", "ts"),
                          field("country", "country"), field("os", "client.os"))
        #expect(out == #"{"profile_id":"p006556","title_id":9013,"ts":1699999998034,"country":"KR","os":"android"}"#)
    }

    @Test("output follows the field order, not the input order")
    func order() {
        #expect(project(#"{"a":1,"b":2,"c":3}"#, field("c", "c"), field("a", "a")) == #"{"c":3,"a":1}"#)
    }

    @Test("values are copied exactly: big integers, number spelling, escapes, nesting")
    func exactness() {
        let e = #"{"big":9007199254740993,"huge":123456789012345678901234567890,"f":1.50E+3,"neg":-0,"s":"a\u00e9\"\n","o":{"x":[1,{"y":null}],"z":"w"},"arr":[ 1 , 2 ]}"#
        let out = project(e, field("big", "big"), field("huge", "huge"), field("f", "f"), field("neg", "neg"),
                          field("s", "s"), field("o", "o"), field("arr", "arr"))
        #expect(out == #"{"big":9007199254740993,"huge":123456789012345678901234567890,"f":1.50E+3,"neg":-0,"s":"a\u00e9\"\n","o":{"x":[1,{"y":null}],"z":"w"},"arr":[ 1 , 2 ]}"#)
    }

    @Test("a missing field is omitted; null stays null")
    func missingAndNull() {
        #expect(project(#"{"a":null,"b":1}"#, field("a", "a"), field("m", "missing"), field("b", "b")) == #"{"a":null,"b":1}"#)
        #expect(project(#"{"a":1}"#, field("m", "missing")) == "{}")
        #expect(project(#"{"a":1}"#, field("m", "missing"), field("a", "a")) == #"{"a":1}"#)
        #expect(project(#"{"a":"str"}"#, field("x", "a.b")) == "{}")   // parent not an object
        #expect(project(#"{"c":{"os":null}}"#, field("os", "c.os")) == #"{"os":null}"#)
    }

    @Test("renames and output names needing escapes")
    func renames() {
        #expect(project(#"{"a":1}"#, field("new name", "a")) == #"{"new name":1}"#)
        #expect(project(#"{"a":1}"#, field("q\"uote", "a")) == #"{"q\"uote":1}"#)
        #expect(project(#"{"a":1}"#, field("é", "a")) == #"{"é":1}"#)
    }

    @Test("the same path, nested and parent paths together")
    func overlapping() {
        let e = #"{"client":{"os":"ios","v":2},"x":1}"#
        #expect(project(e, field("a", "x"), field("b", "x")) == #"{"a":1,"b":1}"#)
        #expect(project(e, field("client", "client"), field("os", "client.os")) == #"{"client":{"os":"ios","v":2},"os":"ios"}"#)
        #expect(project(e, field("os", "client.os"), field("v", "client.v")) == #"{"os":"ios","v":2}"#)
    }

    @Test("escaped keys in the input are found")
    func escapedKeys() {
        #expect(project(#"{"cl\u0069ent":{"\u006fs":"tv"}}"#, field("os", "client.os")) == #"{"os":"tv"}"#)
    }

    @Test("duplicate keys: the last value is projected")
    func duplicates() {
        #expect(project(#"{"a":1,"a":2}"#, field("a", "a")) == #"{"a":2}"#)
        #expect(project(#"{"c":{"os":"ios"},"c":{"v":1}}"#, field("os", "c.os"), field("c", "c")) == #"{"c":{"v":1}}"#)
    }

    @Test("whitespace between tokens is not copied; inside values it is")
    func whitespace() {
        #expect(project(" { \"a\" :\n [1, 2] , \"b\" : \"x y\" } ", field("a", "a"), field("b", "b")) == #"{"a":[1, 2],"b":"x y"}"#)
    }

    @Test("apply appends to the existing buffer")
    func appends() {
        let p = CompiledProjection([field("a", "a")])
        var out = Array("prefix\n".utf8)
        p.apply(Array(#"{"a":1}"#.utf8), into: &out)
        out.append(0x0A)
        p.apply(Array(#"{"a":"2"}"#.utf8), into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "prefix\n{\"a\":1}\n{\"a\":\"2\"}")
    }

    @Test("projected output is always valid JSON and parses back to the input values")
    func outputValid() throws {
        let p = CompiledProjection([field("profile_id", "profile_id"), field("os", "client.os"), field("tags", "tags"),
                                    field("nothing", "nope")])
        let out = p.apply(Array(line.utf8))
        #expect(JSONValidator.validateObject(out) == nil)
        let v = try JSONValue.parse(out)
        let input = try JSONValue.parse(line)
        #expect(v["profile_id"] == input["profile_id"])
        #expect(v["os"] == input["client"]?["os"])
        #expect(v["tags"] == .array([]))
        #expect(v["nothing"] == nil)
    }

    @Test("an empty projection writes {}")
    func emptyProjection() {
        #expect(String(decoding: CompiledProjection([]).apply(Array(line.utf8)), as: UTF8.self) == "{}")
    }

    @Test("truncated input never crashes and always gives a JSON object")
    func truncated() {
        let p = CompiledProjection([field("os", "client.os"), field("tags", "tags")])
        let doc = Array(line.utf8)
        for n in 0...doc.count {
            let out = p.apply(Array(doc[0..<n]))
            #expect(out.first == UInt8(ascii: "{") && out.last == UInt8(ascii: "}"), "prefix \(n): \(String(decoding: out, as: UTF8.self))")
        }
        #expect(String(decoding: p.apply(doc), as: UTF8.self) == #"{"os":"android","tags":[]}"#)
    }
}
