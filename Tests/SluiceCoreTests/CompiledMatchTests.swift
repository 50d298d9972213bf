import Testing
@testable import SluiceCore

private func clause(_ path: String, _ op: MatchOp) -> MatchClause {
    MatchClause(path: path.split(separator: ".", omittingEmptySubsequences: false).map(String.init), op: op)
}

private func matches(_ event: String, _ clauses: MatchClause...) -> Bool {
    CompiledMatch(MatchSpec(clauses: clauses)).matches(Array(event.utf8))
}

private let play = #"{"event_id":"e1","event_type":"play","profile_id":"p1","title_id":9013,"ts":1699999998034,"duration_ms":6177968,"ratio":0.5,"device":"tv","country":"KR","client":{"app_version":"2.18.54","os":"android"},"tags":["sub","hdr"],"live":true,"gone":null}"#

@Suite("CompiledMatch")
struct CompiledMatchTests {
    @Test("W1 filter: play with duration over 1000")
    func w1() {
        let spec = MatchSpec(clauses: [clause("event_type", .eq(.string("play"))), clause("duration_ms", .gt(.int(1000)))])
        let m = CompiledMatch(spec)
        #expect(m.matches(Array(play.utf8)))
        #expect(!m.matches(Array(#"{"event_type":"pause","duration_ms":5000}"#.utf8)))
        #expect(!m.matches(Array(#"{"event_type":"play","duration_ms":1000}"#.utf8)))
        #expect(!m.matches(Array(#"{"event_type":"play","duration_ms":null}"#.utf8)))
        #expect(!m.matches(Array(#"{"event_type":"play"}"#.utf8)))
        #expect(m.matches(Array(#"{"event_type":"play","duration_ms":1000.5}"#.utf8)))
    }

    @Test("an empty match keeps everything")
    func empty() {
        #expect(CompiledMatch(MatchSpec(clauses: [])).matches(Array("{}".utf8)))
    }

    @Test("eq on strings, numbers, bools")
    func eq() {
        #expect(matches(play, clause("event_type", .eq(.string("play")))))
        #expect(!matches(play, clause("event_type", .eq(.string("pla")))))
        #expect(!matches(play, clause("event_type", .eq(.string("play ")))))
        #expect(matches(play, clause("title_id", .eq(.int(9013)))))
        #expect(matches(play, clause("title_id", .eq(.double(9013.0)))))
        #expect(!matches(play, clause("title_id", .eq(.double(9013.5)))))
        #expect(matches(play, clause("ratio", .eq(.double(0.5)))))
        #expect(matches(play, clause("live", .eq(.bool(true)))))
        #expect(!matches(play, clause("live", .eq(.bool(false)))))
        // Types never coerce.
        #expect(!matches(play, clause("title_id", .eq(.string("9013")))))
        #expect(!matches(play, clause("live", .eq(.int(1)))))
        #expect(!matches(play, clause("event_type", .eq(.bool(true)))))
    }

    @Test("numbers compare across int and float, int64 exactly")
    func numericExactness() {
        // 2^53 + 1 cannot be a double; the comparison must still be exact.
        let big = #"{"n":9007199254740993,"f":9007199254740992.0,"m":-9223372036854775808,"x":1e3,"h":18446744073709551616}"#
        #expect(matches(big, clause("n", .eq(.int(9007199254740993)))))
        #expect(!matches(big, clause("n", .eq(.int(9007199254740992)))))
        #expect(matches(big, clause("n", .gt(.int(9007199254740992)))))
        #expect(!matches(big, clause("n", .eq(.double(9007199254740992.0)))))
        #expect(matches(big, clause("n", .gt(.double(9007199254740992.0)))))
        #expect(matches(big, clause("f", .lt(.int(9007199254740993)))))
        #expect(matches(big, clause("m", .eq(.int(.min)))))
        #expect(matches(big, clause("m", .lt(.int(-9223372036854775807)))))
        #expect(matches(big, clause("x", .eq(.int(1000)))))
        #expect(matches(big, clause("h", .gt(.int(.max)))))
        #expect(matches(#"{"n":1}"#, clause("n", .lt(.double(1.5)))))
        #expect(matches(#"{"n":-1}"#, clause("n", .gt(.double(-1.5)))))
        #expect(matches(#"{"n":2}"#, clause("n", .gte(.double(2.0)))))
        #expect(!matches(#"{"n":2}"#, clause("n", .gt(.double(2.0)))))
    }

    @Test("ne: present, not null and different")
    func ne() {
        #expect(matches(play, clause("event_type", .ne(.string("pause")))))
        #expect(!matches(play, clause("event_type", .ne(.string("play")))))
        #expect(matches(play, clause("title_id", .ne(.string("9013")))))  // different type: not equal
        #expect(!matches(play, clause("missing", .ne(.string("x")))))
        #expect(!matches(play, clause("gone", .ne(.string("x")))))
    }

    @Test("in and not_in")
    func inNotIn() {
        #expect(matches(play, clause("client.os", .isIn([.string("ios"), .string("android")]))))
        #expect(!matches(play, clause("client.os", .isIn([.string("ios"), .string("web")]))))
        #expect(!matches(play, clause("client.os", .isIn([]))))
        #expect(matches(play, clause("title_id", .isIn([.int(1), .int(9013)]))))
        #expect(matches(play, clause("client.os", .notIn([.string("ios"), .string("web")]))))
        #expect(!matches(play, clause("client.os", .notIn([.string("android")]))))
        #expect(matches(play, clause("client.os", .notIn([]))))
        #expect(!matches(play, clause("missing", .notIn([.string("x")]))))
        #expect(!matches(play, clause("gone", .notIn([.string("x")]))))
        #expect(!matches(play, clause("gone", .isIn([.null]))))
    }

    @Test("gt gte lt lte on numbers")
    func ordering() {
        #expect(matches(play, clause("duration_ms", .gt(.int(1000)))))
        #expect(!matches(play, clause("duration_ms", .gt(.int(6177968)))))
        #expect(matches(play, clause("duration_ms", .gte(.int(6177968)))))
        #expect(!matches(play, clause("duration_ms", .lt(.int(6177968)))))
        #expect(matches(play, clause("duration_ms", .lte(.int(6177968)))))
        #expect(matches(play, clause("ratio", .lt(.double(0.75)))))
        #expect(matches(play, clause("ratio", .gte(.int(0)))))
    }

    @Test("gt and lt on strings compare bytes; across types they are false")
    func stringOrdering() {
        #expect(matches(play, clause("country", .gt(.string("JP")))))
        #expect(matches(play, clause("country", .lt(.string("US")))))
        #expect(matches(play, clause("country", .gte(.string("KR")))))
        #expect(matches(play, clause("country", .lte(.string("KR")))))
        #expect(!matches(play, clause("country", .gt(.string("KR")))))
        #expect(matches(play, clause("country", .lt(.string("KRA")))))   // prefix sorts first
        #expect(matches(#"{"s":"é"}"#, clause("s", .gt(.string("z")))))  // UTF-8 bytes, not locale
        #expect(!matches(play, clause("country", .gt(.int(0)))))
        #expect(!matches(play, clause("title_id", .gt(.string("0")))))
        #expect(!matches(play, clause("live", .gt(.bool(false)))))
        #expect(!matches(play, clause("tags", .gt(.int(0)))))
    }

    @Test("missing and null never satisfy a comparison")
    func missingAndNull() {
        let ops: [MatchOp] = [.eq(.string("x")), .ne(.string("x")), .isIn([.string("x")]), .notIn([.string("x")]),
                              .gt(.int(0)), .gte(.int(0)), .lt(.int(0)), .lte(.int(0)),
                              .eq(.null), .ne(.null), .isIn([.null]), .notIn([.null])]
        for op in ops {
            #expect(!matches(play, clause("missing", op)), "missing \(op)")
            #expect(!matches(play, clause("gone", op)), "null \(op)")
            #expect(!matches(play, clause("client.missing", op)), "nested missing \(op)")
            #expect(!matches(play, clause("event_type.x", op)), "parent not an object \(op)")
        }
    }

    @Test("exists: true means present and not null; false means missing or null")
    func exists() {
        #expect(matches(play, clause("event_type", .exists(true))))
        #expect(!matches(play, clause("event_type", .exists(false))))
        #expect(!matches(play, clause("missing", .exists(true))))
        #expect(matches(play, clause("missing", .exists(false))))
        #expect(!matches(play, clause("gone", .exists(true))))
        #expect(matches(play, clause("gone", .exists(false))))
        #expect(matches(play, clause("client.os", .exists(true))))
        #expect(matches(play, clause("client.nope", .exists(false))))
        #expect(matches(#"{"a":false}"#, clause("a", .exists(true))))
        #expect(matches(#"{"a":{}}"#, clause("a", .exists(true))))
    }

    @Test("nested paths")
    func nested() {
        let e = #"{"a":{"b":{"c":"deep"},"x":1},"c":"top"}"#
        #expect(matches(e, clause("a.b.c", .eq(.string("deep")))))
        #expect(matches(e, clause("c", .eq(.string("top")))))
        #expect(matches(e, clause("a.x", .eq(.int(1))), clause("a.b.c", .ne(.string("top")))))
        #expect(!matches(e, clause("a.b.c.d", .exists(true))))
        #expect(!matches(e, clause("b.c", .exists(true))))
    }

    @Test("all clauses must hold")
    func conjunction() {
        #expect(matches(play, clause("event_type", .eq(.string("play"))), clause("country", .eq(.string("KR"))),
                        clause("client.os", .isIn([.string("android")]))))
        #expect(!matches(play, clause("event_type", .eq(.string("play"))), clause("country", .eq(.string("US")))))
        // Two clauses on the same path.
        #expect(matches(play, clause("duration_ms", .gt(.int(1000))), clause("duration_ms", .lt(.int(10_000_000)))))
        #expect(!matches(play, clause("duration_ms", .gt(.int(1000))), clause("duration_ms", .lt(.int(2000)))))
    }

    @Test("escaped values compare by decoded value")
    func escapedValues() {
        #expect(matches(#"{"s":"pl\u0061y"}"#, clause("s", .eq(.string("play")))))
        #expect(matches(#"{"s":"a\"b\\c\/d\n"}"#, clause("s", .eq(.string("a\"b\\c/d\n")))))
        #expect(matches(#"{"s":"\u00e9\ud83d\ude00"}"#, clause("s", .eq(.string("é😀")))))
        #expect(matches(#"{"s":"é"}"#, clause("s", .eq(.string("é")))))
        #expect(!matches(#"{"s":"pl\u0061y"}"#, clause("s", .eq(.string("pl\\u0061y")))))
        #expect(matches(#"{"s":"\u0062"}"#, clause("s", .gt(.string("a")))))
        #expect(matches(#"{"s":"pl\u0061y"}"#, clause("s", .isIn([.string("x"), .string("play")]))))
    }

    @Test("escaped keys match by decoded name")
    func escapedKeys() {
        #expect(matches(#"{"event\u005ftype":"play"}"#, clause("event_type", .eq(.string("play")))))
        #expect(matches(#"{"a\"b":1}"#, MatchClause(path: ["a\"b"], op: .eq(.int(1)))))
        #expect(matches(#"{"cli\u0065nt":{"o\u0073":"ios"}}"#, clause("client.os", .eq(.string("ios")))))
        #expect(matches(#"{"a.b":1}"#, MatchClause(path: ["a.b"], op: .eq(.int(1)))))
        #expect(!matches(#"{"a.b":1}"#, clause("a.b", .exists(true))))
    }

    @Test("duplicate keys: the last one wins")
    func duplicateKeys() {
        #expect(matches(#"{"a":1,"a":2}"#, clause("a", .eq(.int(2)))))
        #expect(!matches(#"{"a":1,"a":2}"#, clause("a", .eq(.int(1)))))
        #expect(!matches(#"{"c":{"os":"ios"},"c":{"v":1}}"#, clause("c.os", .exists(true))))
        #expect(matches(#"{"c":{"os":"ios"},"c":{"os":"web"}}"#, clause("c.os", .eq(.string("web")))))
    }

    @Test("arrays and objects compare structurally")
    func composite() {
        #expect(matches(play, clause("tags", .eq(.array([.string("sub"), .string("hdr")])))))
        #expect(!matches(play, clause("tags", .eq(.array([.string("hdr"), .string("sub")])))))
        #expect(matches(play, clause("client", .eq(.object([("os", .string("android")), ("app_version", .string("2.18.54"))])))))
        #expect(matches(play, clause("tags", .ne(.array([])))))
        #expect(!matches(play, clause("tags", .eq(.string("sub")))))
    }

    @Test("whitespace in the event is tolerated")
    func whitespace() {
        let e = " {\n \"a\" : { \"b\" :\t\"x\" } ,\r\n \"n\" : 5 } "
        #expect(matches(e, clause("a.b", .eq(.string("x"))), clause("n", .gte(.int(5)))))
    }

    @Test("a non-object or truncated event never crashes and never matches")
    func robustness() {
        #expect(!matches("[1,2]", clause("a", .exists(true))))
        #expect(!matches("", clause("a", .exists(true))))
        #expect(!matches(#"{"a":"#, clause("a", .exists(true))))
        #expect(!matches(#"{"a"#, clause("a", .exists(true))))
        #expect(!matches(#"{"#, clause("a", .exists(true))))
        // Every prefix of a document: no crash.
        let doc = Array(play.utf8)
        let m = CompiledMatch(MatchSpec(clauses: [clause("client.os", .eq(.string("android"))), clause("tags", .exists(true))]))
        for n in 0...doc.count { _ = m.matches(Array(doc[0..<n])) }
    }
}
