import Testing
@testable import SluiceSpec
import SluiceCore

@Test func variablesAreSubstitutedWithDefaults() throws {
    let spec = try load("""
    pipeline: ${NAME}
    sources:
      in:
        file: { path: "${DATA_DIR:-data}/in.jsonl", follow: "${FOLLOW:-false}" }
    sinks:
      out:
        from: in
        file:
          path: ${OUT}/x-${EMPTY:-e}.jsonl
        queue:
          capacity: ${CAP:-16}
    """, env: ["NAME": "envpipe", "OUT": "/tmp/o", "EMPTY": "", "FOLLOW": "true"])
    #expect(spec.name == "envpipe")
    guard case .file(let p, let follow) = spec.sources[0].kind, case .file(let o) = spec.sinks[0].kind else {
        Issue.record("kinds"); return
    }
    #expect(p == "/srv/app/pipelines/data/in.jsonl")
    #expect(follow == true)
    #expect(o == "/tmp/o/x-e.jsonl")
    #expect(spec.sinks[0].queue.capacity == 16)
}

@Test func unsetVariableWithoutDefaultIsAnErrorAtItsColumn() {
    #expect(errors("""
    pipeline: t
    sources:
      in:
        file:
          path: data/${DIR}/a.jsonl
    sinks:
      out: { from: in, file: { path: "${OUT_DIR}" } }
    """) == [
        "p.yaml:5:18: environment variable 'DIR' is not set and has no default",
        "p.yaml:7:35: environment variable 'OUT_DIR' is not set and has no default",
    ])
}

@Test func substitutedPlainScalarsAreTyped() throws {
    let spec = try load(minimal("""
    tests:
      - name: typed
        input:
          in:
            - n: ${N}
              s: "${N}"
              f: ${F:-1.5}
        expect: {}
    """), env: ["N": "42"])
    #expect(spec.tests[0].input[0].1[0] == .object([("n", .int(42)), ("s", .string("42")), ("f", .double(1.5))]))
}

@Test func substitutionEdgeCases() {
    var problems: [String] = []
    let env = ["A": "1", "E": ""]
    func sub(_ s: String) -> String {
        EnvSubstitution.substitute(s, environment: env) { problems.append("\($0): \($1)") }
    }
    #expect(sub("x${A}y${A}") == "x1y1")
    #expect(sub("$${A}") == "${A}")
    #expect(sub("${E}") == "")
    #expect(sub("${E:-d}") == "d")
    #expect(sub("${MISSING:-}") == "")
    #expect(sub("${MISSING:-a:b}") == "a:b")
    #expect(sub("$A {A} $") == "$A {A} $")
    #expect(problems.isEmpty)
    _ = sub("ab${A")
    _ = sub("${1X}")
    #expect(problems == [
        "2: unterminated '${' (expected '${NAME}' or '${NAME:-default}')",
        "0: invalid environment variable reference '${1X}'",
    ])
}

@Test func keysAreNotSubstituted() {
    #expect(errors(minimal("${X}: 1")) == ["p.yaml:6:1: unknown top-level key '${X}'"])
}
