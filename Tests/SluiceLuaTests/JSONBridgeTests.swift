import SluiceCore
import Testing
@testable import SluiceLua

@Suite struct JSONBridgeTests {
    @Test func nestedObjectsRoundTripWithSortedKeys() throws {
        let h = try Harness()
        #expect(try h.roundTrip(#"{"b":{"y":{"z":1},"x":"s"},"a":true,"c":false}"#)
                == #"{"a":true,"b":{"x":"s","y":{"z":1}},"c":false}"#)
    }

    @Test func arraysStayArraysAndStringKeyedObjectsStayObjects() throws {
        let h = try Harness()
        #expect(try h.roundTrip(#"{"a":[1,"two",[3],{"k":4}],"o":{"1":"x","2":"y"}}"#)
                == #"{"a":[1,"two",[3],{"k":4}],"o":{"1":"x","2":"y"}}"#)
    }

    @Test func emptyArrayAndEmptyObjectKeepTheirShape() throws {
        let h = try Harness()
        #expect(try h.roundTrip(#"{"a":[],"o":{},"n":[[],{}]}"#) == #"{"a":[],"n":[[],{}],"o":{}}"#)
        #expect(try h.roundTrip("[]") == "[]")
        #expect(try h.roundTrip("{}") == "{}")
    }

    @Test func nullFieldsOfTheInputArePreservedAndReadAsNil() throws {
        let h = try Harness(["t.lua": """
            local M = {}
            function M.check(event) return event.a == nil and event.b == 1 end
            function M.touch(event) event.b = 2 return event end
            function M.assign(event) event.a = "set" return event end
            return M
            """])
        #expect(try h.roundTrip(#"{"a":null,"b":1}"#) == #"{"a":null,"b":1}"#)
        let ev = try h.decode(#"{"a":null,"b":1}"#)
        #expect(try h.engine.test(h.engine.function(module: "t", name: "check"), ev, meta: nil).get())
        #expect(try h.mapOnce(h.engine.function(module: "t", name: "touch"), #"{"a":null,"b":1}"#)
                == [#"{"a":null,"b":2}"#])
        #expect(try h.mapOnce(h.engine.function(module: "t", name: "assign"), #"{"a":null,"b":1}"#)
                == [#"{"a":"set","b":1}"#])
    }

    @Test func nullInsideArraysIsTheNullSentinelAndRoundTrips() throws {
        let h = try Harness(["t.lua": """
            return { f = function(event) return #event.a == 3 and event.a[2] == null end }
            """])
        #expect(try h.roundTrip(#"{"a":[1,null,3],"b":[null]}"#) == #"{"a":[1,null,3],"b":[null]}"#)
        let ev = try h.decode(#"{"a":[1,null,3]}"#)
        #expect(try h.engine.test(h.engine.function(module: "t", name: "f"), ev, meta: nil).get())
    }

    @Test func theNullGlobalWritesAnExplicitNull() throws {
        let h = try Harness(["t.lua": """
            return { f = function(event) event.x = null; event.list = array(1, null); return event end }
            """])
        #expect(try h.mapOnce(h.engine.function(module: "t", name: "f"), #"{"a":1}"#)
                == [#"{"a":1,"list":[1,null],"x":null}"#])
    }

    @Test func integersStayExact64Bit() throws {
        let h = try Harness(["t.lua": """
            return { f = function(event)
              assert(math.type(event.big) == "integer")
              event.next = event.big + 1
              return event
            end }
            """])
        #expect(try h.roundTrip(#"{"a":9007199254740993,"b":-9223372036854775808,"c":9223372036854775807,"d":0,"e":-0}"#)
                == #"{"a":9007199254740993,"b":-9223372036854775808,"c":9223372036854775807,"d":0,"e":0}"#)
        #expect(try h.mapOnce(h.engine.function(module: "t", name: "f"), #"{"big":9007199254740993}"#)
                == [#"{"big":9007199254740993,"next":9007199254740994}"#])
    }

    @Test func numbersBeyondInt64DecodeAsFloats() throws {
        let h = try Harness()
        #expect(try h.roundTrip(#"{"a":18446744073709551616,"b":-9223372036854775809}"#)
                == #"{"a":1.8446744073709552e+19,"b":-9.223372036854776e+18}"#)
    }

    @Test func floatsStayFloatsWithShortestRoundTripText() throws {
        let h = try Harness(["t.lua": """
            return { f = function(event)
              assert(math.type(event.one) == "float")
              return event
            end }
            """])
        #expect(try h.roundTrip(#"{"a":0.1,"b":1.0,"c":1e300,"d":-2.5,"e":1E2,"f":1.5e-7,"g":123456.789}"#)
                == #"{"a":0.1,"b":1.0,"c":1e+300,"d":-2.5,"e":100.0,"f":1.5e-07,"g":123456.789}"#)
        #expect(try h.mapOnce(h.engine.function(module: "t", name: "f"), #"{"one":1.0}"#) == [#"{"one":1.0}"#])
        #expect(try h.roundTrip(#"{"x":0.30000000000000004}"#) == #"{"x":0.30000000000000004}"#)
    }

    @Test func unicodeEscapesIncludingSurrogatePairsBecomeUTF8() throws {
        let h = try Harness(["t.lua": """
            return { f = function(event) return event.s == "é中😀" and #event.s == 9 end }
            """])
        #expect(try h.roundTrip(#"{"s":"\u00e9\u4e2d\ud83d\ude00"}"#) == #"{"s":"é中😀"}"#)
        let ev = try h.decode(#"{"s":"\u00e9\u4E2D\uD83D\uDE00"}"#)
        #expect(try h.engine.test(h.engine.function(module: "t", name: "f"), ev, meta: nil).get())
        #expect(try h.roundTrip(#"{"s":"raw é 😀"}"#) == #"{"s":"raw é 😀"}"#)
    }

    @Test func escapesAreWrittenBack() throws {
        let h = try Harness()
        #expect(try h.roundTrip(#"{"s":"q\"b\\s\/n\nt\tr\rc\u0001z\u0000"}"#)
                == #"{"s":"q\"b\\s/n\nt\tr\rc\u0001z\u0000"}"#)
    }

    /// The encoder copies short strings (4 to 16 bytes) a word at a time when no byte needs
    /// escaping: every length, with each byte that needs care (and its plain neighbours) at every
    /// position, in keys and values, must come out exactly as the byte-wise escaper writes it.
    @Test func stringsOfEveryLengthWithEverySpecialByteAtEveryPositionEncodeExactly() throws {
        let h = try Harness(["t.lua": """
            local M = {}
            function M.build(event)
              local s = string.rep("a", event.at) .. utf8.char(event.c) .. string.rep("b", event.len - event.at - 1)
              return { [s] = s }
            end
            function M.raw(event)
              local s = string.rep("a", event.at) .. string.char(event.c) .. string.rep("b", event.len - event.at - 1)
              return { v = s }
            end
            return M
            """])
        let build = try h.engine.function(module: "t", name: "build")
        let raw = try h.engine.function(module: "t", name: "raw")
        func escaped(_ c: UInt32) -> String {
            switch c {
            case 0x22: return "\\\""
            case 0x5C: return "\\\\"
            case 0x0A: return "\\n"
            case 0x0D: return "\\r"
            case 0x09: return "\\t"
            case 0x08: return "\\b"
            case 0x0C: return "\\f"
            case 0..<0x20: return "\\u00" + (c < 0x10 ? "0" : "") + String(c, radix: 16)
            default: return String(UnicodeScalar(c)!)
            }
        }
        let specials: [UInt32] = [0x00, 0x01, 0x08, 0x09, 0x0A, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D,
                                  0x7E, 0x7F, 0xE9, 0x20AC, 0x1F600]
        for len in 1...20 {
            for at in 0..<len {
                for c in specials {
                    let text = String(repeating: "a", count: at) + escaped(c) + String(repeating: "b", count: len - at - 1)
                    let json = "{\"len\":\(len),\"at\":\(at),\"c\":\(c)}"
                    #expect(try h.mapOnce(build, json) == ["{\"\(text)\":\"\(text)\"}"], "\(json)")
                }
                // A byte that is not UTF-8 on its own (0x80, 0xFF) fails wherever it is.
                for c in [0x80, 0xC3, 0xFF] {
                    let json = "{\"len\":\(len),\"at\":\(at),\"c\":\(c)}"
                    let h2 = try h.decode(json)
                    defer { h.engine.release(h2) }
                    var outs: [LuaEventHandle] = []
                    try h.engine.map(raw, h2, meta: nil, into: &outs).get()
                    defer { outs.forEach(h.engine.release) }
                    var out: [UInt8] = []
                    let f = h.failure(h.engine.encodeJSON(outs[0], into: &out))
                    #expect(f?.message.contains("invalid UTF-8") == true, "\(json)")
                }
            }
        }
    }

    @Test(arguments: [
        [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D],          // 0xFF
        [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC0, 0x80, 0x22, 0x7D],    // overlong NUL
        [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D], // UTF-8 encoded surrogate
        [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xE4, 0xB8, 0x22, 0x7D],    // truncated sequence
        [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D],                      // invalid key
    ] as [[UInt8]])
    func invalidUTF8IsRejected(_ bytes: [UInt8]) throws {
        let h = try Harness()
        let f = h.failure(h.engine.decodeJSON(bytes))
        #expect(f?.kind == .decode)
        #expect(f?.message.contains("UTF-8") == true)
    }

    @Test(arguments: [#"{"s":"\ud800"}"#, #"{"s":"\udc00x"}"#, #"{"s":"\ud800\u0041"}"#])
    func loneSurrogatesAreRejected(_ json: String) throws {
        let h = try Harness()
        let f = h.failure(h.engine.decodeJSON(Array(json.utf8)))
        #expect(f?.kind == .decode)
        #expect(f?.message.contains("surrogate") == true)
    }

    @Test(arguments: ["", "{", #"{"a":}"#, #"{"a" 1}"#, "[1,]", #"{"a":01}"#, #"{"a":"x"#, "{\"a\":\"\u{1}\"}",
                      #"{"a":1} x"#, #"{"a":tru}"#, #"{a:1}"#, #"{"a":1,}"#, #"{"a":-}"#, #"{"a":1.}"#,
                      #"{"a":1e}"#, #"{"a":"\x"}"#])
    func malformedJSONIsRejectedWithAReason(_ json: String) throws {
        let h = try Harness()
        let f = h.failure(h.engine.decodeJSON(Array(json.utf8)))
        #expect(f?.kind == .decode)
        #expect(f?.message.hasPrefix("invalid JSON at byte") == true)
    }

    /// Valid JSON beyond the double range reads as +-math.huge (as the declarative path accepts it);
    /// writing it back is what fails, with a reason.
    @Test func numbersBeyondTheDoubleRangeDecodeAsInfinity() throws {
        let h = try Harness()
        let ev = try h.decode(#"{"a":1e999,"b":-1e999}"#)
        var out: [UInt8] = []
        let f = h.failure(h.engine.encodeJSON(ev, into: &out))
        #expect(f?.kind == .encode)
        #expect(f?.message.contains("cannot encode infinity") == true)
        h.engine.release(ev)
    }

    @Test func nestingDeeperThan128IsRejectedOnDecode() throws {
        let h = try Harness()
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(h.failure(h.engine.decodeJSON(Array(deep.utf8)))?.kind == .decode)
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(try h.roundTrip(ok) == ok)
        let over = String(repeating: #"{"a":"#, count: 129) + "1" + String(repeating: "}", count: 129)
        #expect(h.failure(h.engine.decodeJSON(Array(over.utf8)))?.message.contains("128") == true)
        let huge = String(repeating: "[", count: 100_000)
        #expect(h.failure(h.engine.decodeJSON(Array(huge.utf8)))?.kind == .decode)
    }

    @Test func topLevelNonObjectValuesAreAllowed() throws {
        let h = try Harness()
        #expect(try h.roundTrip("  42 ") == "42")
        #expect(try h.roundTrip(#""s""#) == #""s""#)
        #expect(try h.roundTrip("null") == "null")
        #expect(try h.roundTrip("[1,2]") == "[1,2]")
    }

    @Test func tablesBuiltByUDFsEncodeByShape() throws {
        let h = try Harness(["t.lua": """
            local M = {}
            function M.empty() return {} end
            function M.arr() return array() end
            function M.seq() return {1, 2, 3} end
            function M.sparse() return {[1] = "a", [3] = "c"} end
            function M.mixed() return {1, 2, x = 3} end
            return M
            """])
        func run(_ name: String) throws -> [String] { try h.mapOnce(h.engine.function(module: "t", name: name), "{}") }
        #expect(try run("empty") == ["{}"])
        #expect(try run("arr") == ["[]"])
        #expect(try run("seq") == ["[1,2,3]"])
        #expect(try run("sparse") == [#"{"1":"a","3":"c"}"#])
        #expect(try run("mixed") == [#"{"1":1,"2":2,"x":3}"#])
    }

    @Test func unencodableValuesFailWithAMessageNamingTheKey() throws {
        let h = try Harness(["t.lua": """
            local M = {}
            function M.nan(e) e.x = 0/0 return e end
            function M.inf(e) e.x = math.huge return e end
            function M.fn(e) e.client.cb = print return e end
            function M.cycle(e) e.self = e return e end
            function M.deep(e) local t = e for i = 1, 200 do t.n = {} t = t.n end return e end
            function M.badkey(e) e[true] = 1 return e end
            function M.badutf8(e) e.s = "\\255" return e end
            return M
            """])
        func fail(_ name: String) throws -> LuaFailure? {
            let ev = try h.decode(#"{"client":{"os":"ios"}}"#)
            var outs: [LuaEventHandle] = []
            try h.engine.map(h.engine.function(module: "t", name: name), ev, meta: nil, into: &outs).get()
            var bytes: [UInt8] = []
            return h.failure(h.engine.encodeJSON(outs[0], into: &bytes))
        }
        #expect(try fail("nan")?.message == "cannot encode NaN at 'x'")
        #expect(try fail("inf")?.message == "cannot encode infinity at 'x'")
        #expect(try fail("fn")?.message == "cannot encode a function value at 'client.cb'")
        #expect(try fail("cycle")?.message.contains("nesting deeper than 128") == true)
        #expect(try fail("deep")?.kind == .encode)
        #expect(try fail("badkey")?.message.contains("key of type boolean") == true)
        #expect(try fail("badutf8")?.message == "invalid UTF-8 in string at 's'")
    }

    @Test func textEventsAreLuaStringsWrittenRaw() throws {
        let h = try Harness(["t.lua": """
            local M = {}
            function M.up(line) return string.upper(line) end
            function M.tbl(line) return { line = line } end
            return M
            """])
        let ev = h.engine.decodeText(Array("hello \u{1} \"x\"".utf8))
        var outs: [LuaEventHandle] = []
        try h.engine.map(h.engine.function(module: "t", name: "up"), ev, meta: nil, into: &outs).get()
        try h.engine.map(h.engine.function(module: "t", name: "tbl"), ev, meta: nil, into: &outs).get()
        var a: [UInt8] = [], b: [UInt8] = []
        try h.engine.encodeText(outs[0], into: &a).get()
        try h.engine.encodeText(outs[1], into: &b).get()
        #expect(String(decoding: a, as: UTF8.self) == "HELLO \u{1} \"X\"")
        #expect(String(decoding: b, as: UTF8.self) == #"{"line":"hello \u0001 \"x\""}"#)
    }

    @Test func encodeAppendsToTheOutputBuffer() throws {
        let h = try Harness()
        let a = try h.decode(#"{"a":1}"#), b = try h.decode(#"{"b":2}"#)
        var out = Array("X".utf8)
        try h.engine.encodeJSON(a, into: &out).get()
        out.append(10)
        try h.engine.encodeJSON(b, into: &out).get()
        #expect(String(decoding: out, as: UTF8.self) == "X{\"a\":1}\n{\"b\":2}")
    }

    @Test func copyIsDeepAndKeepsNullsAndArrays() throws {
        let h = try Harness(["t.lua": """
            return { f = function(e) e.c.x = 2; e.l[1] = 9; e.n = "set"; return e end }
            """])
        let a = try h.decode(#"{"c":{"x":1},"l":[1,[]],"n":null,"e":{}}"#)
        let b = h.engine.copy(a)
        var outs: [LuaEventHandle] = []
        try h.engine.map(h.engine.function(module: "t", name: "f"), a, meta: nil, into: &outs).get()
        #expect(try h.encode(outs[0]) == #"{"c":{"x":2},"e":{},"l":[9,[]],"n":"set"}"#)
        #expect(try h.encode(b) == #"{"c":{"x":1},"e":{},"l":[1,[]],"n":null}"#)
    }

    @Test func copyOfACycleFailsAndYieldsADeadHandle() throws {
        let h = try Harness(["t.lua": "return { f = function(e) e.me = e return e end }"])
        let a = try h.decode("{}")
        var outs: [LuaEventHandle] = []
        try h.engine.map(h.engine.function(module: "t", name: "f"), a, meta: nil, into: &outs).get()
        #expect(h.failure(h.engine.tryCopy(outs[0]))?.message.contains("cycle") == true)
        let dead = h.engine.copy(outs[0])
        var bytes: [UInt8] = []
        #expect(h.engine.encodeJSON(dead, into: &bytes).isFailure)
    }

    @Test func releasedHandlesAreRejectedAndReleaseIsIdempotent() throws {
        let h = try Harness()
        let a = try h.decode(#"{"a":1}"#)
        h.engine.release(a)
        h.engine.release(a)
        var out: [UInt8] = []
        #expect(h.failure(h.engine.encodeJSON(a, into: &out))?.kind == .runtime)
        #expect(h.engine.liveHandles == 0)
        let b = try h.decode(#"{"b":1}"#), c = try h.decode(#"{"c":1}"#)
        #expect(b != c)
        #expect(try h.encode(b) == #"{"b":1}"#)
        #expect(h.engine.liveHandles == 2)
    }

    @Test func oneMillionDecodeReleaseCyclesKeepMemoryFlat() throws {
        let h = try Harness()
        let line = Array(#"{"event_id":"e000000001","event_type":"play","profile_id":"p060990","title_id":16560,"ts":1699999995114,"duration_ms":null,"client":{"app_version":"4.14.75","os":"tizen"},"tags":["a","b"]}"#.utf8)
        var peak = 0, baseline = 0
        try line.withUnsafeBytes { raw in
            for i in 0..<1_000_000 {
                let ev = try h.engine.decodeJSON(raw).get()
                h.engine.release(ev)
                if i == 10_000 { baseline = h.engine.memoryInUse }
                if i > 10_000 { peak = max(peak, h.engine.memoryInUse) }
            }
        }
        #expect(h.engine.liveHandles == 0)
        #expect(peak < baseline + 4 << 20, "baseline \(baseline) peak \(peak)")
    }

    @Test func manyLiveHandlesGrowTheSlotTable() throws {
        let h = try Harness()
        var hs: [LuaEventHandle] = []
        for i in 0..<5000 { hs.append(try h.decode(#"{"i":\#(i)}"#)) }
        #expect(Set(hs).count == 5000)
        #expect(try h.encode(hs[4321]) == #"{"i":4321}"#)
        hs.forEach(h.engine.release)
        #expect(h.engine.liveHandles == 0)
    }
}

@Suite struct JSONFuzzTests {
    /// Deterministic xorshift so failures reproduce.
    struct Rng {
        var s: UInt64
        mutating func next() -> UInt64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    @Test func mutatedInputNeverCrashesAndWhatDecodesReEncodesToValidJSON() throws {
        let h = try Harness()
        let seed = Array(#"{"event_id":"e1","n":-12.5e3,"big":9223372036854775807,"s":"a\"\\\u00e9\ud83d\ude00","a":[1,null,true,false,{"x":[]}],"o":{},"z":null}"#.utf8)
        var rng = Rng(s: 0x9E3779B97F4A7C15)
        let alphabet = Array(#"{}[]":,\-+.eE0123456789tfnulrsa \u"#.utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC3, 0xED, 0xF0, 0xFF]
        var decoded = 0
        for _ in 0..<20_000 {
            var b = seed
            for _ in 0..<(1 + rng.below(4)) {
                switch rng.below(4) {
                case 0: if !b.isEmpty { b[rng.below(b.count)] = alphabet[rng.below(alphabet.count)] }
                case 1: b.insert(alphabet[rng.below(alphabet.count)], at: rng.below(b.count + 1))
                case 2: if b.count > 1 { b.remove(at: rng.below(b.count)) }
                default: b = Array(b.prefix(rng.below(b.count + 1)))
                }
            }
            switch h.engine.decodeJSON(b) {
            case .failure(let f):
                #expect(f.kind == .decode)
            case .success(let ev):
                decoded += 1
                var out: [UInt8] = []
                if case .failure(let f) = h.engine.encodeJSON(ev, into: &out) {
                    // A mutated exponent can overflow to infinity: valid JSON that cannot be written back.
                    #expect(f.message.contains("cannot encode infinity"), "\(f.message)")
                    h.engine.release(ev)
                    continue
                }
                let again = try h.engine.decodeJSON(out).get()
                var out2: [UInt8] = []
                try h.engine.encodeJSON(again, into: &out2).get()
                #expect(out == out2, "\(String(decoding: b, as: UTF8.self))")
                h.engine.release(ev)
                h.engine.release(again)
            }
        }
        #expect(decoded > 0)
        #expect(h.engine.liveHandles == 0)
    }
}

/// Object keys come from a cache of interned strings, compared a word at a time: every length
/// (cached up to 32 bytes, interned afresh beyond), keys that differ in a single byte anywhere,
/// and short keys at the very end of the input must all read back exactly.
@Suite struct KeyCacheTests {
    private static func key(_ length: Int, changedAt: Int? = nil) -> String {
        String((0..<length).map { i -> Character in
            i == changedAt ? "Z" : Character(UnicodeScalar(UInt8(ascii: "a") + UInt8(i % 26)))
        })
    }

    @Test func keysOfEveryLengthAndEveryOneByteVariantReadBackExactly() throws {
        let h = try Harness(["k.lua": """
            local M = {}
            function M.names(event)
              local out = {}
              for k, v in pairs(event) do out[#out + 1] = k .. "=" .. tostring(v) end
              table.sort(out)
              return { names = table.concat(out, ",") }
            end
            return M
            """])
        let names = try h.engine.function(module: "k", name: "names")
        for length in 0...40 {
            var keys = [Self.key(length)]
            if length > 0 { keys += (0..<length).map { Self.key(length, changedAt: $0) } }
            // Twice: the second pass reads every key from the cache the first pass filled.
            for _ in 0..<2 {
                for (i, k) in keys.enumerated() {
                    let json = "{\"\(k)\":\(i)}"
                    #expect(try h.mapOnce(names, json) == ["{\"names\":\"\(k)=\(i)\"}"], "\(json)")
                }
            }
            let all = "{" + keys.enumerated().map { "\"\($0.element)\":\($0.offset)" }.joined(separator: ",") + "}"
            let expected = keys.enumerated().map { "\($0.element)=\($0.offset)" }.sorted().joined(separator: ",")
            #expect(try h.mapOnce(names, all) == ["{\"names\":\"\(expected)\"}"], "length \(length)")
        }
    }
}
