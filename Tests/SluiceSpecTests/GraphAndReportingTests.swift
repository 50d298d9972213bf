import Testing
@testable import SluiceSpec
import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Test func allProblemsAreReportedTogetherInFileOrder() {
    #expect(errors("""
    pipeline: multi
    udfs: { reload: sometimes }
    sources:
      plays: { file: { path: p.jsonl } }
      spare: { stdin: {}, format: xml }
    transforms:
      clean: { from: plays, fliter: 'x' }
      shaped: { from: clean, project: { a: b } }
    sinks:
      out: { from: shapd, stdout: {}, queue: { when_full: later } }
      err: { from: shaped, stderr: {}, when: { n: { gt: 1 } }, file: { path: x } }
    """) == [
        "p.yaml:2:17: invalid value 'sometimes' for 'reload' in 'udfs' (expected watch, signal or off)",
        "p.yaml:5:31: invalid value 'xml' for 'format' of source 'spare' (expected json or text)",
        "p.yaml:7:25: unknown key 'fliter' in transform 'clean' (did you mean 'filter'?)",
        "p.yaml:10:16: unknown component 'shapd' in 'from' of sink 'out' (did you mean 'shaped'?)",
        "p.yaml:10:55: invalid value 'later' for 'when_full' in 'queue' of sink 'out' (expected block, drop_newest or dead_letter)",
        "p.yaml:11:60: sink 'err' has more than one type key ('stderr' and 'file')",
    ])
}

@Test func diagnosticsPrintAsFileLineColumnMessage() {
    let d = Diagnostic(location: SourceLocation(file: "plays.yaml", line: 14, column: 7), message: "unknown key 'fliter'")
    #expect(d.description == "plays.yaml:14:7: unknown key 'fliter'")
    let e = SpecErrors(diagnostics: [d, d])
    #expect(e.description == "plays.yaml:14:7: unknown key 'fliter'\nplays.yaml:14:7: unknown key 'fliter'")
}

@Test func topologicalOrderPutsUpstreamsFirstAndKeepsFileOrder() throws {
    let spec = try load("""
    sources:
      a: { stdin: {} }
      b: { file: { path: b.jsonl } }
    transforms:
      late: { from: [early, b], filter: 'true' }
      early: { from: a, filter: 'true' }
      side: { from: a, map: { udf: m.f } }
    sinks:
      s1: { from: [late, side], stdout: {} }
      s2: { from: early, stdout: {} }
    """)
    #expect(spec.topologicalOrder() == ["a", "b", "early", "late", "side", "s1", "s2"])
    #expect(spec.upstreams(of: "late") == ["early", "b"])
    #expect(spec.upstreams(of: "a") == [])
    #expect(spec.downstreams(of: "a") == ["early", "side"])
    #expect(spec.downstreams(of: "early") == ["late", "s2"])
    #expect(spec.downstreams(of: "s1") == [])
    #expect(spec.role(of: "side") == .transform)
    #expect(spec.role(of: "nope") == nil)
    #expect(spec.componentNames == ["a", "b", "late", "early", "side", "s1", "s2"])
}

@Test func loadingFromAFileResolvesPathsAgainstItsDirectory() throws {
    let dir = "/tmp/sluice-spec-test-\(getpid())"
    mkdir(dir, 0o700)
    mkdir(dir + "/pipelines", 0o700)
    let path = dir + "/pipelines/x.yaml"
    let text = """
    sources: { in: { file: { path: ../data/in.jsonl } } }
    sinks: { out: { from: in, file: { path: out.jsonl } } }
    """
    let f = fopen(path, "w")
    fputs(text, f)
    fclose(f)
    defer { unlink(path); rmdir(dir + "/pipelines"); rmdir(dir) }

    let spec = try SpecLoader.load(path: path, environment: [:])
    #expect(spec.file == path)
    #expect(spec.directory == dir + "/pipelines")
    #expect(spec.udfs.dir == dir + "/udfs")
    guard case .file(let input, _) = spec.sources[0].kind, case .file(let output) = spec.sinks[0].kind else {
        Issue.record("kinds"); return
    }
    #expect(input == dir + "/data/in.jsonl")
    #expect(output == dir + "/pipelines/out.jsonl")
}

@Test func aMissingSpecFileIsReported() {
    do {
        _ = try SpecLoader.load(path: "/nonexistent/dir/p.yaml", environment: [:])
        Issue.record("expected an error")
    } catch {
        #expect(error.diagnostics.map(\.description) == ["/nonexistent/dir/p.yaml: cannot read the spec: No such file or directory"])
    }
}
