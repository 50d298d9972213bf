import Foundation
import Testing

/// User errors get a clear message and the documented exit code, never a stack dump.
@Suite struct CLITests {
    @Test func validateReportsEveryProblemWithLineAndColumnAndExits2() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: broken
        sources:
          plays:
            file: { path: ../data/x.jsonl }
        transforms:
          clean:
            from: plays
            fliter: 'event.x'
        sinks:
          out:
            from: missing
            stdout: {}
        """, to: "pipelines/broken.yaml")
        let r = try await SluiceBinary.runAsync(["validate", "pipelines/broken.yaml"], cwd: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("pipelines/broken.yaml:8:5: unknown key 'fliter' in transform 'clean' (did you mean 'filter'?)"), "\(r.stderr)")
        #expect(r.stderr.contains("pipelines/broken.yaml:11:11:"), "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
    }

    @Test func validateWarnsAboutAJoinThatMayNotBeCoPartitionedAndExits0() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: cp
        sources:
          imps: { kafka: { brokers: 'b:9092', topics: imps } }
          plays: { kafka: { brokers: 'b:9092', topics: plays } }
        transforms:
          j:
            join:
              left: { from: imps, key: '{profile_id}' }
              right: { from: plays, key: '{profile_id}' }
              within: 1m
        sinks:
          out: { from: j, stdout: {} }
        """, to: "pipelines/cp.yaml")
        let r = try await SluiceBinary.runAsync(["validate", "pipelines/cp.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "pipelines/cp.yaml: ok\n")
        #expect(r.stderr == "pipelines/cp.yaml:6:3: warning: join 'j' reads topics imps, plays: they are co-partitioned "
                + "only if they have the same partition count and are keyed by the join key (the spec cannot tell)\n"
                + "pipelines/cp.yaml:6:3: warning: join 'j' reads Kafka without settings.checkpoint: its state is in memory "
                + "only (no checkpoint, no changelog topic), so after a restart or a rebalance its keys start empty; with "
                + "settings.checkpoint it is kept in cp-j-changelog\n")
    }

    @Test func luaReferenceErrorsAreReportedInTheSameRunAsStructuralErrors() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("local M = {}\nfunction M.ok(e) return e end\nreturn M\n", to: "udfs/m.lua")
        try dir.write("""
        pipeline: both
        sources:
          s: { stdin: {} }
        transforms:
          t: { from: s, map: { udf: m.nope } }
          u: { from: t, filter: 'event.x ==' }
        sinks:
          o: { from: u, stdout: {}, capacty: 3 }
        """, to: "pipelines/both.yaml")
        let r = try await SluiceBinary.runAsync(["validate", "pipelines/both.yaml"], cwd: dir)
        #expect(r.status == 2)
        let lines = r.stderr.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(r.stderr)")
        #expect(lines.first?.hasPrefix("pipelines/both.yaml:5:29: cannot load UDF 'm.nope'") == true, "\(r.stderr)")
        #expect(lines.dropFirst().first?.hasPrefix("pipelines/both.yaml:6:25: invalid Lua expression in 'u'") == true, "\(r.stderr)")
        #expect(lines.dropFirst(2).first?.hasPrefix("pipelines/both.yaml:8:29: unknown key 'capacty' in sink 'o'") == true, "\(r.stderr)")
        #expect(lines.last == "pipelines/both.yaml: 3 problem(s) found")
    }

    @Test func missingSpecFileIsAClearError() async throws {
        let r = try await SluiceBinary.runAsync(["run", "/nonexistent/spec.yaml"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("/nonexistent/spec.yaml: no such file"))
    }

    @Test func badYAMLNamesLineAndColumn() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("pipeline: x\nsources:\n  a: [\n", to: "pipelines/bad.yaml")
        let r = try await SluiceBinary.runAsync(["validate", "pipelines/bad.yaml"], cwd: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("pipelines/bad.yaml:"), "\(r.stderr)")
    }

    @Test func unknownUDFFunctionIsReportedAtItsSpecLine() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("local M = {}\nfunction M.ok(e) return e end\nreturn M\n", to: "udfs/m.lua")
        try dir.write("""
        pipeline: x
        sources:
          s: { stdin: {} }
        transforms:
          t:
            from: s
            map: { udf: m.nope }
        sinks:
          o: { from: t, stdout: {} }
        """, to: "pipelines/x.yaml")
        let r = try await SluiceBinary.runAsync(["validate", "pipelines/x.yaml"], cwd: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("pipelines/x.yaml:7:"), "\(r.stderr)")
        #expect(r.stderr.contains("nope"), "\(r.stderr)")
    }

    @Test func luaSyntaxErrorIsReportedWithTheLuaFileAndLine() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("local M = {}\nfunction M.f(e)\n  return e +\nend\nreturn M\n", to: "udfs/m.lua")
        try dir.write("""
        pipeline: x
        sources:
          s: { stdin: {} }
        transforms:
          t: { from: s, map: { udf: m.f } }
        sinks:
          o: { from: t, stdout: {} }
        """, to: "pipelines/x.yaml")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/x.yaml"], cwd: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("m.lua:4:"), "\(r.stderr)")
    }

    @Test func sluiceTestFailsWhenAnExpectationIsWrong() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: t
        sources:
          s: { stdin: {} }
        transforms:
          keep: { from: s, filter: { match: { n: { gt: 1 } } } }
        sinks:
          o: { from: keep, stdout: {} }
        tests:
          - name: right
            input: { s: [ { n: 1 }, { n: 2 } ] }
            expect: { o: [ { n: 2 } ] }
          - name: wrong
            input: { s: [ { n: 1 }, { n: 2 } ] }
            expect: { o: [ { n: 1 } ] }
        """, to: "pipelines/t.yaml")
        let r = try await SluiceBinary.runAsync(["test", "pipelines/t.yaml"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.stdout.contains("PASS  right"))
        #expect(r.stdout.contains("FAIL  wrong"))
        #expect(r.stdout.contains("1 passed, 1 failed"))
    }

    @Test func sluiceTestChecksDeadLetteredEvents() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("local M = {}\nfunction M.f(e) if e.bad then error('bad event') end return e end\nreturn M\n", to: "udfs/m.lua")
        try dir.write("""
        pipeline: t
        sources:
          s: { stdin: {} }
        transforms:
          t: { from: s, map: { udf: m.f } }
        sinks:
          o: { from: t, stdout: {} }
        tests:
          - name: the bad event is dead-lettered, the good one passes
            input: { s: [ { n: 1 }, { n: 2, bad: true } ] }
            expect:
              o: [ { n: 1 } ]
              dead_letter: [ { n: 2, bad: true } ]
          - name: expecting no dead letters fails
            input: { s: [ { n: 2, bad: true } ] }
            expect:
              dead_letter: []
        """, to: "pipelines/t.yaml")
        let r = try await SluiceBinary.runAsync(["test", "pipelines/t.yaml"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.stdout.contains("PASS  the bad event is dead-lettered, the good one passes"), "\(r.stdout)")
        #expect(r.stdout.contains("FAIL  expecting no dead letters fails"), "\(r.stdout)")
        #expect(r.stdout.contains("sink 'dead_letter': expected 0 event(s), got 1"), "\(r.stdout)")
    }
}
