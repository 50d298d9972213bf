import Testing
import CSluiceJSON
@testable import SluiceCore

private func find(_ json: String, _ path: String) -> (type: Int32, text: String) {
    let bytes = Array(json.utf8)
    var v = sj_value()
    let t = bytes.withUnsafeBufferPointer { b in
        path.withCString { sj_find(b.baseAddress, b.count, $0, path.utf8.count, &v) }
    }
    let text = t == Int32(SJ_MISSING) ? "" : String(decoding: bytes[v.off..<(v.off + v.len)], as: UTF8.self)
    return (t, text)
}

private func spanEq(_ raw: String, _ s: String) -> Bool {
    let r = Array(raw.utf8), b = Array(s.utf8)
    return sj_string_eq(r, r.count, b, b.count) != 0
}

private func spanCmp(_ raw: String, _ s: String) -> Int32 {
    let r = Array(raw.utf8), b = Array(s.utf8)
    return sj_string_cmp(r, r.count, b, b.count)
}

@Suite("C span helpers")
struct JSONSpanTests {
    @Test("sj_find returns type and raw span of a dotted path")
    func findPaths() {
        let doc = #"{"a":{"b":[1,{"c":2}],"s":"x\"y","n":-1.5e3,"t":true,"f":false,"z":null,"o":{}},"k":"v"}"#
        #expect(find(doc, "k") == (Int32(SJ_STRING), #""v""#))
        #expect(find(doc, "a.b") == (Int32(SJ_ARRAY), #"[1,{"c":2}]"#))
        #expect(find(doc, "a.s") == (Int32(SJ_STRING), #""x\"y""#))
        #expect(find(doc, "a.n") == (Int32(SJ_NUMBER), "-1.5e3"))
        #expect(find(doc, "a.t") == (Int32(SJ_BOOL), "true"))
        #expect(find(doc, "a.f") == (Int32(SJ_BOOL), "false"))
        #expect(find(doc, "a.z") == (Int32(SJ_NULL), "null"))
        #expect(find(doc, "a.o") == (Int32(SJ_OBJECT), "{}"))
        #expect(find(doc, "a.q").type == Int32(SJ_MISSING))
        #expect(find(doc, "k.x").type == Int32(SJ_MISSING))
        #expect(find(doc, "a.b.c").type == Int32(SJ_MISSING))  // no array indexing
        #expect(find("[1]", "a").type == Int32(SJ_MISSING))
        #expect(find(#"{"a":1,"a":2}"#, "a").text == "2")
        #expect(find(#"{"\u0061":1}"#, "a").text == "1")
    }

    @Test("string spans compare by decoded value")
    func stringEquality() {
        #expect(spanEq(#""abc""#, "abc"))
        #expect(!spanEq(#""abc""#, "abd"))
        #expect(!spanEq(#""abc""#, "ab"))
        #expect(spanEq(#""""#, ""))
        #expect(spanEq(#""\t\u0041\/""#, "\tA/"))
        #expect(spanEq(#""\ud83d\ude00""#, "😀"))
        #expect(!spanEq("abc", "abc"))   // not a string span
        #expect(spanCmp(#""b""#, "a") > 0)
        #expect(spanCmp(#""a""#, "ab") < 0)
        #expect(spanCmp(#""\u0061b""#, "ab") == 0)
        let long = "\"" + String(repeating: "\\u0041", count: 200) + "\""   // decode needs the heap path
        #expect(spanEq(long, String(repeating: "A", count: 200)))
    }

    @Test("decodeString handles every escape")
    func decode() {
        let raw = Array(#""a\"\\\/\b\f\n\r\t\u00e9\u20ac\ud83d\ude00""#.utf8)
        let s = raw.withUnsafeBytes { JSONSpan.decodeString($0) }
        #expect(s == "a\"\\/\u{8}\u{c}\n\r\té€😀")
        #expect(Array("x".utf8).withUnsafeBytes { JSONSpan.decodeString($0) } == nil)
    }

    @Test("number spans parse to int64 or double")
    func numbers() {
        func num(_ s: String) -> JSONValue? { Array(s.utf8).withUnsafeBytes { JSONSpan.number($0) } }
        #expect(num("0") == .int(0))
        #expect(num("-0") == .int(0))
        #expect(num("9007199254740993").map { if case .int(let i) = $0 { i == 9007199254740993 } else { false } } == true)
        #expect(num("1.25") == .double(1.25))
        #expect(num("-1e-2") == .double(-0.01))
        #expect(num("1e23") == .double(1e23))
        #expect(num("3.141592653589793238462643383279") == .double(3.141592653589793))
        #expect(num("00012") == .int(12))  // lenient on spans (the validator rejects leading zeros)
        #expect(num("1.") == nil)
        #expect(num("abc") == nil)
        #expect(num("") == nil)
        #expect(num("1x") == nil)
    }

    @Test("a path set reports each path's slot, sharing identical paths")
    func pathSet() {
        let ps = JSONPathSet([["a"], ["b", "c"], ["a"], ["b"]])
        #expect(ps.slots == [0, 1, 0, 2])
        #expect(ps.slotCount == 3)
    }
}
