import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Hot reload of Lua UDFs (`udfs.reload: watch | signal | off`), checked through the built binary:
/// real file rewrites (in place and by rename), inotify, SIGHUP, SIGTERM, /proc.
@Suite struct HotReloadTests {
    static func spec(_ name: String, reload: String, transforms: String = "t: { from: s, map: { udf: m.stamp } }",
                     last: String = "t", settings: String = "{ workers: 2, batch_size: 64 }",
                     sink: String = "file: { path: ../out/o.jsonl }") -> String {
        """
        pipeline: \(name)
        udfs: { reload: \(reload) }
        sources:
          s: { stdin: {} }
        transforms:
          \(transforms)
        sinks:
          o: { from: \(last), \(sink) }
        settings: \(settings)
        """
    }

    static func summary(_ stderr: String) -> String {
        stderr.split(separator: "\n").last { $0.contains(" events; wrote ") }.map(String.init) ?? "<no summary>\n\(stderr)"
    }

    /// Run-length form of a sequence, for short failure messages: `A/1×200, B/2×100`.
    static func runs(_ items: [String]) -> String {
        var out: [(String, Int)] = []
        for i in items {
            if let last = out.last, last.0 == i { out[out.count - 1].1 += 1 } else { out.append((i, 1)) }
        }
        return out.prefix(40).map { "\($0.0)×\($0.1)" }.joined(separator: ", ")
    }

    /// Waits for out/o.jsonl to hold exactly `count` lines; on a timeout the failure shows the run's log.
    static func expectOutput(_ run: ReloadingRun, count: Int, sourceLocation: SourceLocation = #_sourceLocation) async {
        let got = await run.dir.waitForLines("out/o.jsonl", count: count)
        #expect(got.count == count, "out/o.jsonl has \(got.count) lines, expected \(count); log:\n\(run.stderrLines.joined(separator: "\n"))",
                sourceLocation: sourceLocation)
    }

    static func rejections(_ stderr: String) -> [String] {
        stderr.split(separator: "\n").filter { $0.contains("UDF reload rejected") }.map(String.init)
    }

    // MARK: 1

    @Test func everyEventIsProcessedByExactlyOneVersionWhileTheUDFIsRewrittenUnderLoad() async throws {
        let dir = try SluiceBinary.scratch()
        let udf = dir.appendingPathComponent("udfs/m.lua").path
        try dir.write(UDFFile.stamp("A"), to: "udfs/m.lua")
        try dir.write(Self.spec("reload-stream", reload: "watch"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)

        let total = 200_000, chunk = 1_000
        let fed = Counter()        // chunks written to stdin
        // Chunks the feeder may write: the test hands them out step by step, so the stream outlasts
        // every rewrite however the threads are scheduled.
        let allowed = Counter()
        allowed.add(10)
        let feeder = Thread {
            for c in 0..<(total / chunk) {
                allowed.waitFor(atLeast: c + 1, timeout: 300)
                run.feed(.seqLines((c * chunk)..<((c + 1) * chunk)))
                fed.add(1)
                usleep(2_000)
            }
            run.closeStdin()
            fed.raise()
        }
        feeder.start()

        // Ten more chunks, and everything fed so far has come out (so the live version processed some).
        func afterMoreInput() async {
            allowed.add(10)
            let n = allowed.current
            let written = await eventually(timeout: .seconds(60)) { fed.current >= n && dir.newlines("out/o.jsonl") >= n * chunk }
            #expect(written, "\(fed.current) chunks fed, \(dir.newlines("out/o.jsonl")) lines out, \(n * chunk) expected")
        }
        await afterMoreInput()
        try UDFFile.writeInPlace(UDFFile.stamp("B"), to: udf)
        #expect(await run.waitForVersion(2))
        await afterMoreInput()
        try UDFFile.writeByRename(UDFFile.stamp("C"), to: udf)
        #expect(await run.waitForVersion(3))
        await afterMoreInput()
        // Syntax error (reported at line 5): never live.
        try UDFFile.writeInPlace("""
        local M = {}
        function M.stamp(event, ctx)
          event.v = "X"
          event.cv = ctx.version +
        end
        return M
        """, to: udf)
        #expect(await run.waitForRejections(1))
        await afterMoreInput()
        try UDFFile.writeByRename(UDFFile.stamp("D"), to: udf)
        #expect(await run.waitForVersion(4))
        await afterMoreInput()
        // Compiles, but its self-test (line 7) fails: never live.
        try UDFFile.writeByRename(UDFFile.stamp("Y", extra: """
        function M.selftest() assert(M.stamp({}, { version = 0 }).v == "Z", "stamp writes the wrong marker") end
        """), to: udf)
        #expect(await run.waitForRejections(2))
        await afterMoreInput()
        // A passing self-test.
        try UDFFile.writeInPlace(UDFFile.stamp("E", extra: """
        function M.selftest() assert(M.stamp({}, { version = 0 }).v == "E") end
        """), to: udf)
        #expect(await run.waitForVersion(5))
        await afterMoreInput()
        allowed.add(total / chunk)   // the rest
        #expect(await eventually(timeout: .seconds(120)) { fed.isRaised }, "the feeding thread did not finish")

        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(Self.summary(stderr).hasSuffix("read 200000 events; wrote o=200000; dead-lettered 0; udf version 5, 2 reload(s) rejected"),
                "\(Self.summary(stderr))")
        let rejected = Self.rejections(stderr)
        #expect(rejected.count == 2, "\(rejected)")
        #expect(rejected.first?.hasPrefix("sluice: error: UDF reload rejected, keeping version 3: udfs/m.lua:5: unexpected symbol near 'end'") == true,
                "\(rejected)")
        #expect(rejected.last == "sluice: error: UDF reload rejected, keeping version 4: udfs/m.lua:7: stamp writes the wrong marker (m.selftest failed; module m is used by 't')")

        let out = Stamped.parse(dir.lines("out/o.jsonl"))
        // Exactly one output per input, in input order: none missing, none duplicated.
        #expect(out.count == total)
        let seqsInOrder = out.map(\.seq) == Array(0..<total)
        #expect(seqsInOrder)
        // Each event carries the marker of the version that processed it.
        let markers = ["A", "B", "C", "D", "E"]
        let inconsistent = out.filter { !(1...5).contains($0.version) || markers[$0.version - 1] != $0.marker }
        #expect(inconsistent.isEmpty, "\(inconsistent.prefix(5))")
        #expect(Set(out.map(\.marker)) == Set(markers), "\(Self.runs(out.map { "\($0.marker)/\($0.version)" }))")
        // A version never goes back once a later one processed an event.
        let regressions = zip(out, out.dropFirst()).filter { $0.1.version < $0.0.version }
        #expect(regressions.isEmpty, "\(regressions.prefix(5))")
    }

    // MARK: 2

    @Test func sighupReloadsInSignalModeButFileChangesAloneDoNot() async throws {
        let dir = try SluiceBinary.scratch()
        let udf = dir.appendingPathComponent("udfs/m.lua").path
        try dir.write(UDFFile.stamp("A"), to: "udfs/m.lua")
        try dir.write(Self.spec("reload-signal", reload: "signal"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        run.feed(.seqLines(0..<1))
        await Self.expectOutput(run, count: 1)

        try UDFFile.writeByRename(UDFFile.stamp("B"), to: udf)
        // No signal says "a file change was ignored": leave a wrong file-triggered reload the time one
        // takes in watch mode (25 ms inotify wait + 15 ms debounce + the reload), then check that no
        // version went live and that the next event still runs on version 1 (checked below).
        try await Task.sleep(for: .milliseconds(300))
        #expect(!run.stderrLines.contains { $0.contains("is live") }, "\(run.stderrLines)")
        run.feed(.seqLines(1..<2))
        await Self.expectOutput(run, count: 2)

        run.send(SIGHUP)
        #expect(await run.waitForVersion(2))
        run.feed(.seqLines(2..<3))
        await Self.expectOutput(run, count: 3)

        // A broken file is rejected on SIGHUP too, and version 2 keeps running.
        try UDFFile.writeInPlace("local M = {}\nfunction M.stamp(event, ctx)\n  return event\nend\nerror('no')\nreturn M\n", to: udf)
        run.send(SIGHUP)
        #expect(await run.waitForRejections(1))
        run.feed(.seqLines(3..<4))
        await Self.expectOutput(run, count: 4)

        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(Self.summary(stderr).hasSuffix("read 4 events; wrote o=4; dead-lettered 0; udf version 2, 1 reload(s) rejected"), "\(stderr)")
        #expect(Self.rejections(stderr).first?.hasPrefix("sluice: error: UDF reload rejected, keeping version 2: udfs/m.lua:5: no") == true, "\(stderr)")
        #expect(Stamped.parse(dir.lines("out/o.jsonl")) == [
            Stamped(seq: 0, marker: "A", version: 1),
            Stamped(seq: 1, marker: "A", version: 1),
            Stamped(seq: 2, marker: "B", version: 2),
            Stamped(seq: 3, marker: "B", version: 2),
        ])
    }

    @Test func sighupAlsoReloadsInWatchMode() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write(UDFFile.stamp("A"), to: "udfs/m.lua")
        try dir.write(Self.spec("reload-watch-hup", reload: "watch"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        run.feed(.seqLines(0..<1))
        await Self.expectOutput(run, count: 1)
        // No file changed: SIGHUP alone publishes a new version of the same code.
        run.send(SIGHUP)
        #expect(await run.waitForVersion(2))
        run.feed(.seqLines(1..<2))
        await Self.expectOutput(run, count: 2)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(Self.summary(stderr).hasSuffix("udf version 2, 0 reload(s) rejected"), "\(stderr)")
        #expect(Stamped.parse(dir.lines("out/o.jsonl")).map(\.version) == [1, 2])
    }

    @Test func sighupWithReloadOffIsIgnoredAndTheProcessSurvives() async throws {
        let dir = try SluiceBinary.scratch()
        let udf = dir.appendingPathComponent("udfs/m.lua").path
        try dir.write(UDFFile.stamp("A"), to: "udfs/m.lua")
        try dir.write(Self.spec("reload-off", reload: "off"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        run.feed(.seqLines(0..<1))
        await Self.expectOutput(run, count: 1)
        try UDFFile.writeByRename(UDFFile.stamp("B"), to: udf)
        run.send(SIGHUP)
        #expect(await run.waitForStderr { $0.contains { $0.contains("SIGHUP ignored: udfs.reload is off") } })
        run.send(SIGHUP)
        // The process survives both signals: the events fed after them come out.
        run.feed(.seqLines(1..<3))
        await Self.expectOutput(run, count: 3)
        #expect(run.process.isRunning)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(Self.summary(stderr).hasSuffix("read 3 events; wrote o=3; dead-lettered 0"), "\(stderr)")
        #expect(!stderr.contains("is live"))
        #expect(Stamped.parse(dir.lines("out/o.jsonl")).map(\.marker) == ["A", "A", "A"])
        #expect(Stamped.parse(dir.lines("out/o.jsonl")).map(\.version) == [1, 1, 1])
    }

    // MARK: 3

    /// `gapMs`: time from the rewrite to SIGTERM; negative = SIGTERM first, then the rewrite.
    @Test(arguments: [0, 15, -1])
    func aReloadDuringTheSigtermDrainLosesAndDuplicatesNothing(gapMs: Int) async throws {
        let dir = try SluiceBinary.scratch()
        let udf = dir.appendingPathComponent("udfs/m.lua").path
        // Some work per event so the drain (8 queued batches of 32) takes a while.
        let busy = "function M.spin() local x = 0; for i = 1, 3000 do x = x + i end; return x end"
        try dir.write(UDFFile.stamp("A", extra: busy).replacingOccurrences(of: "return event", with: "event.x = M.spin(); return event"),
                      to: "udfs/m.lua")
        try dir.write(Self.spec("reload-drain", reload: "watch", settings: "{ workers: 2, batch_size: 32 }"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        let stop = Counter()
        let feeder = Thread {
            var i = 0
            while !stop.isRaised && i < 2_000_000 {
                run.feed(.seqLines(i..<(i + 500)))
                i += 500
            }
            stop.add(1)
        }
        feeder.start()
        // Let a few thousand events through, then reload and stop at about the same time.
        #expect(await eventually(timeout: .seconds(30)) { dir.size("out/o.jsonl") >= 3_000 * 40 }, "\(run.stderrLines)")
        let b = UDFFile.stamp("B", extra: busy).replacingOccurrences(of: "return event", with: "event.x = M.spin(); return event")
        if gapMs < 0 {
            run.send(SIGTERM)
            try UDFFile.writeByRename(b, to: udf)
        } else {
            try UDFFile.writeByRename(b, to: udf)
            if gapMs > 0 { try await Task.sleep(for: .milliseconds(gapMs)) }   // the gap under test, not a wait
            run.send(SIGTERM)
        }
        let (status, stderr) = try await offPool { run.finish(closingStdin: false) }
        stop.raise()
        // writes fail with EPIPE once the process is gone
        #expect(await eventually(timeout: .seconds(10)) { stop.current == 1 }, "the feeding thread is stuck writing to a dead process")
        run.closeStdin()
        #expect(status == 0, "\(stderr)")
        let summary = Self.summary(stderr)
        let read = summary.firstMatch(of: /read (\d+) events/).map { Int($0.1)! } ?? -1
        let dead = summary.firstMatch(of: /dead-lettered (\d+)/).map { Int($0.1)! } ?? -1
        let out = Stamped.parse(dir.lines("out/o.jsonl"))
        #expect(read >= 3_000)
        // A line cut by SIGTERM is read to its end, never dead-lettered half-way.
        #expect(dead == 0, "\(summary)")
        #expect(out.count == read - dead, "\(summary)")
        let seqsInOrder = out.map(\.seq) == Array(0..<out.count)
        #expect(seqsInOrder)
        let bad = out.filter { !($0.marker == "A" && $0.version == 1) && !($0.marker == "B" && $0.version == 2) }
        #expect(bad.isEmpty, "\(bad.prefix(5))")
        #expect(zip(out, out.dropFirst()).allSatisfy { $0.1.version >= $0.0.version })
        print("reload during drain (gap \(gapMs) ms): \(Self.runs(out.map { "\($0.marker)/\($0.version)" })); \(summary)")
        let final = summary.firstMatch(of: /udf version (\d+), 0 reload\(s\) rejected/).map { Int($0.1)! }
        #expect(final == 1 || final == 2, "\(summary)")
        if out.contains(where: { $0.version == 2 }) { #expect(final == 2) }
    }

    // MARK: 4

    @Test func removingAModuleInUseIsRejectedAndAddingItBackGoesLive() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write(UDFFile.stamp("A"), to: "udfs/m.lua")
        try dir.write("local M = {}\nfunction M.tag(event, ctx) event.n = \"n1\"; return event end\nreturn M\n", to: "udfs/n.lua")
        try dir.write(Self.spec("reload-remove", reload: "watch",
                                transforms: "t: { from: s, map: { udf: m.stamp } }\n  tagged: { from: t, map: { udf: n.tag } }",
                                last: "tagged"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        run.feed(.seqLines(0..<100))
        await Self.expectOutput(run, count: 100)

        try FileManager.default.removeItem(at: dir.appendingPathComponent("udfs/n.lua"))
        #expect(await run.waitForRejections(1))
        let message = run.stderrLines.first { $0.contains("UDF reload rejected") } ?? ""
        #expect(message == "sluice: error: UDF reload rejected, keeping version 1: udfs/n.lua: module 'n' not found (udfs/n.lua) (n.tag is used by 'tagged')")
        run.feed(.seqLines(100..<200))
        await Self.expectOutput(run, count: 200)
        #expect(run.process.isRunning)

        // Put it back (changed), change m to require a module in a new subdirectory, all at once: one reload.
        let udfs = dir.appendingPathComponent("udfs").path
        try dir.write("local M = {}\nfunction M.tag(event, ctx) event.n = \"n2\"; return event end\nreturn M\n", to: "udfs/n.lua.tmp~")
        try dir.write(UDFFile.stamp("B").replacingOccurrences(of: "\"B\"", with: "require(\"lib.markers\").marker"), to: "udfs/m.lua.tmp~")
        try FileManager.default.createDirectory(atPath: udfs + "/lib", withIntermediateDirectories: false)
        try UDFFile.writeInPlace("return { marker = \"B\" }\n", to: udfs + "/lib/markers.lua")
        #expect(rename(udfs + "/n.lua.tmp~", udfs + "/n.lua") == 0)
        #expect(rename(udfs + "/m.lua.tmp~", udfs + "/m.lua") == 0)
        #expect(await run.waitForVersion(2))
        run.feed(.seqLines(200..<300))
        await Self.expectOutput(run, count: 300)

        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(Self.summary(stderr).hasSuffix("read 300 events; wrote o=300; dead-lettered 0; udf version 2, 1 reload(s) rejected"), "\(stderr)")
        let out = dir.lines("out/o.jsonl").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let tags = out.map { o in "\(o?["v"] as? String ?? "?")/\(o?["n"] as? String ?? "?")/\(o?["cv"] as? Int ?? 0)" }
        #expect(Self.runs(tags) == "A/n1/1×200, B/n2/2×100")
        #expect(out.compactMap { $0?["seq"] as? Int } == Array(0..<300))
        #expect(!stderr.contains("UDF version 3"))
    }

    // MARK: 5

    @Test func memoryStaysFlatOverAThousandReloads() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write(UDFFile.stamp("A", extra: "local big = {}\nfor i = 1, 2000 do big[i] = string.rep('x', 64) .. i end\nM.size = #big"),
                      to: "udfs/m.lua")
        try dir.write(Self.spec("reload-memory", reload: "signal", sink: "stdout: {}"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        // Signal handlers are installed once the first event has gone through.
        run.feed(.seqLines(0..<1))
        #expect(await run.waitForStdoutLines(1))
        var warm: Int?
        var stuck: Int?
        for i in 1...1_000 {
            run.send(SIGHUP)
            if !(await run.waitForVersion(i + 1)) { stuck = i; break }
            // Events keep flowing, so workers keep rebuilding their Lua states on newer versions.
            run.feed(.seqLines(i..<(i + 1)))
            if i == 50 {
                #expect(await run.waitForStdoutLines(51))
                warm = run.rssKiB()
            }
        }
        #expect(stuck == nil, "reload \(stuck ?? 0) did not publish")
        #expect(await run.waitForStdoutLines(1_001))
        let end = run.rssKiB()
        let snapshotDirs = (FileManager.default.enumerator(atPath: dir.appendingPathComponent("tmp").path)?.allObjects as? [String] ?? [])
            .filter { $0.hasPrefix("sluice-udfs-") && $0.split(separator: "/").count == 2 }
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(Self.summary(stderr).hasSuffix("read 1001 events; wrote o=1001; dead-lettered 0; udf version 1001, 0 reload(s) rejected"),
                "\(Self.summary(stderr))")
        let versions = Stamped.parse(run.stdoutLines).map(\.version)
        // Event i was fed once version i+1 was live: it ran on version i+1 or a later one, never earlier.
        #expect(versions.count == 1_001)
        #expect(versions.enumerated().allSatisfy { $0.element >= $0.offset + 1 && $0.element <= 1_001 })
        #expect(zip(versions, versions.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(versions.last == 1_001)
        print("hot reload memory: VmRSS \(warm ?? -1) KiB after 50 reloads, \(end ?? -1) KiB after 1000")
        if let warm, let end {
            #expect(Double(end) <= Double(warm) * 1.05, "VmRSS \(warm) KiB after 50 reloads, \(end) KiB after 1000")
        } else {
            Issue.record("no VmRSS: \(String(describing: warm)) \(String(describing: end))")
        }
        // Old snapshot copies are pruned while running, and all of them are removed at exit.
        #expect(snapshotDirs.count >= 1 && snapshotDirs.count <= 8, "\(snapshotDirs)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("tmp").path)) ?? []
        #expect(left.filter { $0.hasPrefix("sluice-udfs-") }.isEmpty, "\(left)")
    }

    @Test func aSelftestFailsByRaisingAnErrorOrReturningFalse() async throws {
        let dir = try SluiceBinary.scratch()
        let udf = dir.appendingPathComponent("udfs/m.lua").path
        try dir.write(UDFFile.stamp("A"), to: "udfs/m.lua")
        try dir.write(Self.spec("reload-selftest", reload: "signal"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        run.feed(.seqLines(0..<1))
        await Self.expectOutput(run, count: 1)
        // Passing: returns true (a natural `assert(...); return true` self-test).
        try UDFFile.writeByRename(UDFFile.stamp("B", extra: "function M.selftest() return true end"), to: udf)
        run.send(SIGHUP)
        #expect(await run.waitForVersion(2))
        // Failing: returns false.
        try UDFFile.writeByRename(UDFFile.stamp("C", extra: "function M.selftest() return false end"), to: udf)
        run.send(SIGHUP)
        #expect(await run.waitForRejections(1))
        // Failing: raises.
        try UDFFile.writeByRename(UDFFile.stamp("D", extra: "function M.selftest() error(\"bad stamp\") end"), to: udf)
        run.send(SIGHUP)
        #expect(await run.waitForRejections(2))
        run.feed(.seqLines(1..<2))
        await Self.expectOutput(run, count: 2)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(Self.rejections(stderr) == [
            "sluice: error: UDF reload rejected, keeping version 2: udfs/m.lua: m.selftest returned false (module m is used by 't')",
            "sluice: error: UDF reload rejected, keeping version 2: udfs/m.lua:7: bad stamp (m.selftest failed; module m is used by 't')",
        ])
        #expect(Self.summary(stderr).hasSuffix("udf version 2, 2 reload(s) rejected"), "\(stderr)")
        #expect(Stamped.parse(dir.lines("out/o.jsonl")) == [Stamped(seq: 0, marker: "A", version: 1), Stamped(seq: 1, marker: "B", version: 2)])
    }

    @Test func modulesInASubdirectoryCreatedWhileRunningAreWatched() async throws {
        let dir = try SluiceBinary.scratch()
        let udfs = dir.appendingPathComponent("udfs").path
        try dir.write(UDFFile.stamp("A"), to: "udfs/m.lua")
        try dir.write(Self.spec("reload-subdir", reload: "watch"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        run.feed(.seqLines(0..<1))
        await Self.expectOutput(run, count: 1)
        // A new directory with a new module, then m starts using it: each settles into a version.
        try FileManager.default.createDirectory(atPath: udfs + "/lib", withIntermediateDirectories: false)
        try UDFFile.writeInPlace("return { marker = \"B\" }\n", to: udfs + "/lib/markers.lua")
        #expect(await run.waitForVersion(2))
        try UDFFile.writeByRename(UDFFile.stamp("B").replacingOccurrences(of: "\"B\"", with: "require(\"lib.markers\").marker"), to: udfs + "/m.lua")
        #expect(await run.waitForVersion(3))
        run.feed(.seqLines(1..<2))
        await Self.expectOutput(run, count: 2)
        // Editing the module inside the new directory must reload too.
        try UDFFile.writeInPlace("return { marker = \"C\" }\n", to: udfs + "/lib/markers.lua")
        #expect(await run.waitForVersion(4, timeout: 5), "an edit to lib/markers.lua did not reload")
        run.feed(.seqLines(2..<3))
        await Self.expectOutput(run, count: 3)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        #expect(Stamped.parse(dir.lines("out/o.jsonl")).map(\.marker) == ["A", "B", "C"])
        #expect(Self.summary(stderr).hasSuffix("udf version 4, 0 reload(s) rejected"), "\(stderr)")
    }

    // MARK: documented details

    @Test func moduleLevelStateStartsFreshAfterAReload() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        local M = {}
        local calls = 0
        function M.stamp(event, ctx)
          calls = calls + 1
          event.calls = calls
          event.cv = ctx.version
          return event
        end
        return M
        """, to: "udfs/m.lua")
        try dir.write(Self.spec("reload-state", reload: "signal", settings: "{ workers: 1, batch_size: 64 }"), to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        run.feed(.seqLines(0..<5))
        await Self.expectOutput(run, count: 5)
        run.send(SIGHUP)
        #expect(await run.waitForVersion(2))
        run.feed(.seqLines(5..<8))
        await Self.expectOutput(run, count: 8)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        let out = dir.lines("out/o.jsonl").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(out.map { "\($0?["calls"] as? Int ?? 0)@\($0?["cv"] as? Int ?? 0)" } == ["1@1", "2@1", "3@1", "4@1", "5@1", "1@2", "2@2", "3@2"])
    }

    @Test func aGenerateSourceKeepsTheVersionItStartedWith() async throws {
        let dir = try SluiceBinary.scratch()
        let gen = dir.appendingPathComponent("udfs/gen.lua").path
        try dir.write("local M = {}\nfunction M.make(event, ctx) event.g = \"G1\"; return event end\nreturn M\n", to: "udfs/gen.lua")
        try dir.write(UDFFile.stamp("A"), to: "udfs/m.lua")
        try dir.write("""
        pipeline: reload-generate
        udfs: { reload: watch }
        sources:
          s: { generate: { count: 1000000, rate: 20/s, udf: gen.make } }
        transforms:
          t: { from: s, map: { udf: m.stamp } }
        sinks:
          o: { from: t, file: { path: ../out/o.jsonl } }
        settings: { workers: 1, batch_size: 8 }
        """, to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        // The source generates until SIGTERM, so the rewrites land while it runs.
        #expect(await dir.waitForLines("out/o.jsonl", count: 3).count >= 3, "\(run.stderrLines)")
        try UDFFile.writeByRename("local M = {}\nfunction M.make(event, ctx) event.g = \"G2\"; return event end\nreturn M\n", to: gen)
        try UDFFile.writeByRename(UDFFile.stamp("B"), to: dir.appendingPathComponent("udfs/m.lua").path)
        #expect(await run.waitForVersion(2))
        // An event processed by version 2, then stop.
        #expect(await eventually(timeout: .seconds(20)) { dir.lines("out/o.jsonl").last?.contains(#""v":"B""#) == true }, "\(run.stderrLines)")
        run.send(SIGTERM)
        let (status, stderr) = try await offPool { run.finish() }
        #expect(status == 0, "\(stderr)")
        let out = dir.lines("out/o.jsonl").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(Self.summary(stderr).contains("read \(out.count) events; wrote o=\(out.count); dead-lettered 0"), "\(Self.summary(stderr))")
        #expect(out.allSatisfy { $0?["g"] as? String == "G1" })
        #expect(out.last??["v"] as? String == "B")
        #expect(out.first??["v"] as? String == "A")
    }
}
