import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Runtime guarantees, checked through the built binary on real files, pipes and signals.
@Suite struct RuntimeBehaviourTests {
    static func events(_ n: Int, start: Int = 0) -> [String] {
        (start..<(start + n)).map { i in
            #"{"seq":\#(i),"event_type":"\#(i % 3 == 0 ? "pause" : "play")","duration_ms":\#(i * 7 % 5000),"client":{"os":"\#(i % 2 == 0 ? "ios" : "web")"},"name":"caf\u00e9 \#(i)"}"#
        }
    }

    @Test func unchangedEventsPassThroughByteForByte() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: passthrough
        sources:
          s: { stdin: {} }
        sinks:
          o: { from: s, stdout: {} }
        """, to: "pipelines/p.yaml")
        let input = [
            #"{"a":1,  "b":[1,2,{"c":null}],"big":9007199254740993,"f":1.50,"u":"\u00e9\ud83d\ude00"}"#,
            #"{"z":{},"y":[],"x":-0.0,"w":1E+2}"#,
        ]
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], stdin: input.joined(separator: "\n") + "\n", cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutLines == input)
    }

    @Test func malformedLinesGoToTheDeadLetterSinkWithReasonAndPosition() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: malformed
        sources:
          s: { file: { path: ../data/in.jsonl } }
        sinks:
          o: { from: s, file: { path: ../out/o.jsonl } }
        dead_letter:
          file: { path: ../out/dead.jsonl }
        """, to: "pipelines/p.yaml")
        try dir.write("""
        {"n":1}
        {"n":2,
        not json at all

        [1,2,3]
        {"n":3}
        {"n":"\u{1}"}
        {"n":4}

        """, to: "data/in.jsonl")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(dir.lines("out/o.jsonl") == [#"{"n":1}"#, #"{"n":3}"#, #"{"n":4}"#])
        let dead = dir.lines("out/dead.jsonl").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(dead.count == 4)
        #expect(dead.map { $0["position"] as? Int } == [2, 3, 5, 7])
        #expect(dead.allSatisfy { ($0["reason"] as? String)?.isEmpty == false && $0["component"] as? String == "s" })
        #expect(dead.first?["event"] as? String == #"{"n":2,"#)
        #expect(r.stderr.contains("dead-lettered 4"), "\(r.stderr)")
    }

    @Test func aFailingUDFDeadLettersThatEventAndThePipelineGoesOn() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        local M = {}
        function M.f(event, ctx)
          if event.n == 2 then error("boom on two") end
          if event.n == 3 then while true do end end
          event.m = event.n * 10
          return event
        end
        return M
        """, to: "udfs/m.lua")
        try dir.write("""
        pipeline: failing
        udfs: { limits: { instructions: 100000 } }
        sources:
          s: { stdin: {} }
        transforms:
          t: { from: s, map: { udf: m.f } }
        sinks:
          o: { from: t, stdout: {} }
        dead_letter:
          file: { path: ../out/dead.jsonl }
        """, to: "pipelines/p.yaml")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], stdin: "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n", cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutLines == [#"{"m":10,"n":1}"#, #"{"m":40,"n":4}"#])
        let dead = dir.lines("out/dead.jsonl")
        #expect(dead.count == 2)
        #expect(dead.first?.contains("boom on two") == true)
        #expect(dead.first?.contains("m.lua:3") == true)
        #expect(dead.last?.contains("instruction") == true)
    }

    @Test func outputOrderMatchesInputOrderWithSeveralWorkers() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        local M = {}
        function M.tag(event, ctx) event.tagged = true; return event end
        return M
        """, to: "udfs/m.lua")
        try dir.write("""
        pipeline: ordered
        sources:
          s: { file: { path: ../data/in.jsonl } }
        transforms:
          plays: { from: s, filter: { match: { event_type: play } } }
          tagged: { from: plays, map: { udf: m.tag } }
        sinks:
          o: { from: tagged, file: { path: ../out/o.jsonl } }
        settings: { workers: 4, batch_size: 7 }
        """, to: "pipelines/p.yaml")
        let input = Self.events(20_000)
        try dir.write(input.joined(separator: "\n") + "\n", to: "data/in.jsonl")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let seqs = dir.lines("out/o.jsonl").compactMap { line -> Int? in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return o["seq"] as? Int
        }
        let expected = (0..<20_000).filter { $0 % 3 != 0 }
        #expect(seqs == expected)
    }

    @Test func sigtermMidStreamDrainsAndLosesNothing() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: drain
        sources:
          s: { stdin: {} }
        transforms:
          p: { from: s, project: [seq, event_type] }
        sinks:
          o: { from: p, file: { path: ../out/o.jsonl } }
        """, to: "pipelines/p.yaml")
        let running = SluiceBinary.start(["run", "pipelines/p.yaml"], cwd: dir)
        try running.process.run()
        let writer = running.stdin.fileHandleForWriting
        let sent = 20 * 500
        try await offPool {   // writes block while the pipe is full
            for chunk in 0..<20 { writer.write(Data((Self.events(500, start: chunk * 500).joined(separator: "\n") + "\n").utf8)) }
        }
        // Wait until some output has landed, then stop mid-stream with the pipe still open.
        #expect(await eventually(timeout: .seconds(20)) { dir.lines("out/o.jsonl").count >= 1000 }, "\(dir.lines("out/o.jsonl").count) lines")
        kill(running.process.processIdentifier, SIGTERM)
        let r = try await offPool { running.finish() }
        try? writer.close()
        #expect(r.status == 0, "\(r.stderr)")
        let out = dir.lines("out/o.jsonl")
        // Everything read was written, in order, exactly once.
        let read = r.stderr.firstMatch(of: /read (\d+) events/).map { Int($0.1)! } ?? -1
        #expect(read == out.count, "\(r.stderr)")
        #expect(out.count >= 1000 && out.count <= sent)
        let expected = Self.events(out.count).map { line -> String in
            let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return #"{"seq":\#(o["seq"] as! Int),"event_type":"\#(o["event_type"] as! String)"}"#
        }
        #expect(out == expected)
    }

    @Test func dropNewestOnAStalledSinkKeepsTheOtherSinkFlowingAndCountsDrops() async throws {
        let dir = try SluiceBinary.scratch()
        let fifo = dir.appendingPathComponent("out/stalled.pipe").path
        #expect(mkfifo(fifo, 0o644) == 0)
        // Open the reading end but do not read: the sink's writes block once the pipe buffer is full.
        let readEnd = open(fifo, O_RDONLY | O_NONBLOCK)
        #expect(readEnd >= 0)
        defer { close(readEnd) }
        try dir.write("""
        pipeline: stalled
        sources:
          s: { file: { path: ../data/in.jsonl } }
        sinks:
          fast: { from: s, file: { path: ../out/fast.jsonl } }
          stalled:
            from: s
            file: { path: ../out/stalled.pipe }
            queue: { capacity: 500, when_full: drop_newest }
        settings: { batch_size: 100 }
        """, to: "pipelines/p.yaml")
        let n = 30_000
        try dir.write(Self.events(n).joined(separator: "\n") + "\n", to: "data/in.jsonl")
        let running = SluiceBinary.start(["run", "pipelines/p.yaml"], cwd: dir)
        try running.process.run()
        // The fast sink gets everything while the stalled one is still stuck.
        #expect(await eventually(timeout: .seconds(30)) { dir.lines("out/fast.jsonl").count == n }, "\(dir.lines("out/fast.jsonl").count) of \(n)")
        #expect(running.process.isRunning)
        // Now unstall it: read the pipe to the end.
        let flags = fcntl(readEnd, F_GETFL)
        _ = fcntl(readEnd, F_SETFL, flags & ~O_NONBLOCK)
        let stalledLines = try await offPool { () -> Int in
            var lines = 0
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let got = read(readEnd, &buffer, buffer.count)
                if got <= 0 { break }
                lines += buffer[0..<got].filter { $0 == 0x0A }.count
            }
            return lines
        }
        let r = try await offPool { running.finish() }
        #expect(r.status == 0, "\(r.stderr)")
        let dropped = r.stderr.firstMatch(of: /stalled=(\d+) \(dropped (\d+)\)/)
        #expect(dropped != nil, "\(r.stderr)")
        if let dropped {
            #expect(Int(dropped.1)! == stalledLines)
            #expect(stalledLines + Int(dropped.2)! == n)
            #expect(Int(dropped.2)! > 0)
        }
    }
}

/// A dead letter sink that cannot write: the run says what was lost and fails, it never ends
/// with exit 0 and a plain "dead-lettered N".
@Suite struct DeadLetterFailureTests {
    @Test func aDeadLetterSinkThatCannotWriteFailsTheRunAndSaysWhatWasLost() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: dlq-full
        sources:
          s: { file: { path: ../data/in.jsonl } }
        sinks:
          o: { from: s, file: { path: ../out/o.jsonl } }
        dead_letter:
          file: { path: /dev/full }
        """, to: "pipelines/p.yaml")
        try dir.write("{\"n\":1}\nnot json\n{\"n\":2}\n", to: "data/in.jsonl")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], cwd: dir)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("1 dead letter(s) could not be written"), "\(r.stderr)")
        #expect(r.stderr.contains("not written"), "\(r.stderr)")
        #expect(dir.lines("out/o.jsonl") == [#"{"n":1}"#, #"{"n":2}"#])
    }
}

extension DeadLetterFailureTests {
    /// A followed file never ends: only the dead letter failure can stop the run.
    @Test func aDeadLetterFailureStopsAnEndlessRun() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: dlq-full-follow
        sources:
          s: { file: { path: ../data/in.jsonl, follow: true } }
        sinks:
          o: { from: s, file: { path: ../out/o.jsonl } }
        dead_letter:
          file: { path: /dev/full }
        """, to: "pipelines/p.yaml")
        try dir.write("{\"n\":1}\nnot json\n", to: "data/in.jsonl")
        let p = SluiceBinary.start(["run", "pipelines/p.yaml"], cwd: dir)
        try p.process.run()
        try p.stdin.fileHandleForWriting.close()
        let process = p.process
        // A watchdog, not a wait: it only fires if the run fails to stop by itself.
        DispatchQueue.global().asyncAfter(deadline: .now() + 60) { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let r: SluiceBinary.Result = await withCheckedContinuation { c in
            Thread { c.resume(returning: p.finish()) }.start()
        }
        // Exit status 1, not the watchdog's SIGKILL (9). Not `process.terminationReason`: when the
        // test reaps the child itself (Foundation missed its exit on a loaded machine), Foundation
        // still thinks it runs, and that getter traps.
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("stopping the pipeline"), "\(r.stderr)")
        #expect(r.stderr.contains("(1 not written: lost, unacknowledged)"), "\(r.stderr)")
    }
}
