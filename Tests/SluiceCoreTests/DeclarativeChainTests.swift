import Testing
import CSluiceJSON
@testable import SluiceCore

private func p(_ s: String) -> [String] { s.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

private func run(_ chain: DeclarativeChain, _ event: String) -> (DeclarativeChain.Outcome, String) {
    var out: [UInt8] = []
    let o = chain.run(Array(event.utf8), into: &out)
    return (o, String(decoding: out, as: UTF8.self))
}

@Suite("DeclarativeChain (fused validate + match + project)")
struct DeclarativeChainTests {
    let w1 = DeclarativeChain([
        .match(MatchSpec(clauses: [MatchClause(path: ["event_type"], op: .eq(.string("play"))),
                                   MatchClause(path: ["duration_ms"], op: .gt(.int(1000)))])),
        .project([ProjectField(output: "profile_id", path: ["profile_id"]), ProjectField(output: "title_id", path: ["title_id"]),
                  ProjectField(output: "ts", path: ["ts"]), ProjectField(output: "country", path: ["country"]),
                  ProjectField(output: "os", path: p("client.os"))]),
    ])

    @Test("W1: kept events are projected byte for byte, others dropped, invalid reported")
    func w1Chain() {
        let line = #"{"event_id":"e0","event_type":"play","profile_id":"p006556","title_id":9013,"ts":1699999998034,"duration_ms":6177968,"device":"tv","country":"KR","client":{"app_version":"2.18.54","os":"android"},"tags":[]}"#
        let (o, out) = run(w1, line)
        #expect(o == .kept)
        #expect(out == #"{"profile_id":"p006556","title_id":9013,"ts":1699999998034,"country":"KR","os":"android"}"#)
        #expect(run(w1, #"{"event_type":"play","duration_ms":null}"#) == (.dropped, ""))
        #expect(run(w1, #"{"event_type":"pause","duration_ms":5000}"#) == (.dropped, ""))
        #expect(run(w1, #"{"event_type":"play","duration_ms":5000,}"#) == (.invalid(JSONSyntaxError(message: "unexpected character '}'", offset: 40)), ""))
        #expect(run(w1, "[1]").0 == .invalid(JSONSyntaxError(message: "expected a JSON object", offset: 0)))
    }

    @Test("without a project step the event passes through unchanged")
    func passThrough() {
        let chain = DeclarativeChain([.match(MatchSpec(clauses: [MatchClause(path: ["a"], op: .exists(true))]))])
        let e = #" {"a" : 1,"b":"x\u00e9"} "#
        #expect(run(chain, e) == (.kept, e))
        #expect(run(chain, #"{"b":1}"#) == (.dropped, ""))
    }

    @Test("paths after a projection refer to its output")
    func rewrite() {
        let chain = DeclarativeChain([
            .project([ProjectField(output: "os", path: p("client.os")), ProjectField(output: "c", path: ["client"])]),
            .match(MatchSpec(clauses: [MatchClause(path: ["os"], op: .eq(.string("ios"))),
                                       MatchClause(path: p("c.v"), op: .gte(.int(2)))])),
            .project([ProjectField(output: "system", path: ["os"]), ProjectField(output: "gone", path: ["client"])]),
        ])
        #expect(run(chain, #"{"client":{"os":"ios","v":2}}"#) == (.kept, #"{"system":"ios"}"#))
        #expect(run(chain, #"{"client":{"os":"web","v":2}}"#) == (.dropped, ""))
        #expect(run(chain, #"{"client":{"os":"ios","v":1}}"#) == (.dropped, ""))
        // A match on a name the projection does not output never holds.
        let never = DeclarativeChain([.project([ProjectField(output: "a", path: ["a"])]),
                                      .match(MatchSpec(clauses: [MatchClause(path: ["b"], op: .exists(true))]))])
        #expect(run(never, #"{"a":1,"b":2}"#) == (.dropped, ""))
    }

    @Test("the fused chain agrees with running CompiledMatch and CompiledProjection separately")
    func agreesWithSeparateSteps() {
        let spec = MatchSpec(clauses: [MatchClause(path: p("a.b"), op: .isIn([.int(1), .string("x")])),
                                       MatchClause(path: ["n"], op: .lt(.double(10.5)))])
        let fields = [ProjectField(output: "ab", path: p("a.b")), ProjectField(output: "a", path: ["a"]),
                      ProjectField(output: "arr", path: ["arr"]), ProjectField(output: "n", path: ["n"])]
        let chain = DeclarativeChain([.match(spec), .project(fields)])
        let m = CompiledMatch(spec), pr = CompiledProjection(fields)
        let events = [
            #"{"a":{"b":1},"n":3,"arr":[1,[2]]}"#,
            #"{"a":{"b":"x","c":{}},"n":10.4}"#,
            #"{"a":{"b":"y"},"n":3}"#,
            #"{"a":{"b":1},"a":{"c":1},"n":1}"#,
            #"{"a":[{"b":1}],"n":1}"#,
            #"{"a":{"b":1,"b":{"z":[]}},"n":-1,"arr":{"k":[{}]}}"#,
            #"{"n":1,"a":{"b":1},"a":{"b":"x"},"arr":null}"#,
            #"{"a":{"b\u0020":1,"\u0062":1},"n":1e0}"#,
            #"{"a":{"b":1},"n":10.5}"#,
        ]
        for e in events {
            var fused: [UInt8] = []
            let o = chain.run(Array(e.utf8), into: &fused)
            let keep = m.matches(Array(e.utf8))
            #expect((o == .kept) == keep, "\(e)")
            if keep { #expect(fused == pr.apply(Array(e.utf8)), "\(e)") }
        }
    }

    @Test("sj_validate_find finds exactly what sj_find_many finds")
    func fusedLookupAgrees() {
        let paths: [[String]] = [["a"], ["a", "b"], ["a", "b", "c"], ["x"], ["arr"], ["e"], ["a", "z"], ["k"]]
        let set = JSONPathSet(paths)
        let docs = [
            #"{"a":{"b":{"c":1,"d":[1,2]},"z":"q"},"x":[{"a":1}],"arr":[],"e":{}}"#,
            #"{"a":{"b":5},"a":{"z":null},"x":true}"#,
            #"{"a":{"b":{"c":{"deep":[[{}]]}}},"k":"\"}"}"#,
            #" { "a" : { "b" : { "c" : "s" } , "z" : -0.5e1 } , "x" : false } "#,
            #"{"a":[{"b":1}],"x":{"a":{"b":2}}}"#,
            #"{"a":"str","arr":[{"a":{"b":1}}],"e":null}"#,
            #"{}"#,
        ]
        for d in docs {
            let bytes = Array(d.utf8)
            bytes.withUnsafeBytes { raw in
                let slow = set.find(in: raw) { Array($0) }
                let fused = set.validateAndFind(raw) { Array($0) }
                guard case .success(let f) = fused else { Issue.record("invalid \(d)"); return }
                #expect(f.count == slow.count)
                for (x, y) in zip(f, slow) {
                    #expect(x.type == y.type, "\(d)")
                    if x.type != Int32(SJ_MISSING) { #expect(x.off == y.off && x.len == y.len, "\(d)") }
                }
            }
        }
    }

    @Test("invalid input through the fused path reports the same error as the validator")
    func fusedErrors() {
        for bad in [#"{"a":01}"#, #"{"a":"\x"}"#, String(repeating: "[", count: 1000), #"{"a":1} x"#, "{\"a\":\"\u{1}\"}"] {
            var out: [UInt8] = []
            let o = w1.run(Array(bad.utf8), into: &out)
            #expect(o == .invalid(JSONValidator.validateObject(Array(bad.utf8))!), "\(bad)")
            #expect(out.isEmpty)
        }
        // 100k-deep nesting through the fused path.
        var out: [UInt8] = []
        let deep = Array(#"{"a":"#.utf8) + Array(repeating: UInt8(ascii: "["), count: 100_000)
        if case .invalid(let e) = w1.run(deep, into: &out) { #expect(e.message == "nesting deeper than 128") } else { Issue.record("accepted") }
    }

    @Test("already-validated input can skip validation")
    func skipValidation() {
        var out: [UInt8] = []
        let o = w1.run(Array(#"{"event_type":"play","duration_ms":2000,"ts":1}"#.utf8), into: &out, validate: false)
        #expect(o == .kept)
        #expect(String(decoding: out, as: UTF8.self) == #"{"ts":1}"#)
    }
}
