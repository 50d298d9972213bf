import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Checkpoints, restore and rewind through the built binary (`settings.checkpoint`): kill -9 at
/// seeded random points during a join over files, SIGTERM and restart, damaged checkpoint files, a
/// replaced input file, and `sluice checkpoints` / `sluice rewind` by id and by time.
@Suite struct CheckpointTests {
    /// The example join (`pipelines/play-conversion.yaml`) over generated data, with checkpoints.
    /// `idle: 1h`: a followed input that waits for data on a loaded machine never turns idle
    /// (an idle input stops holding the watermark back, which would change the answer).
    static func joinSpec(every: String, followPlays: Bool = false) -> String {
        """
        pipeline: ckpt-join
        sources:
          impressions: { file: { path: ../data/imp.jsonl }, time: ts, lateness: 10s, idle: 1h }
          plays:       { file: { path: ../data/plays.jsonl, follow: \(followPlays) }, time: ts, lateness: 10s, idle: 1h }
        transforms:
          converted:
            join:
              left:  { from: impressions, key: '{profile_id}:{title_id}' }
              right: { from: plays,       key: '{profile_id}:{title_id}' }
              within: 1h
              merge: { udf: conversions.attribute }
        sinks:
          conversions: { from: converted, file: { path: ../out/conversions.jsonl } }
        dead_letter:
          file: { path: ../out/dead_letter.jsonl }
        settings:
          checkpoint: { dir: ../ckpt, every: \(every), keep: 3 }
        """
    }

    /// A stateless copy from one file to another, with checkpoints.
    static let copySpec = """
        pipeline: ckpt-copy
        sources:
          in: { file: { path: ../data/in.jsonl } }
        sinks:
          out: { from: in, file: { path: ../out/out.jsonl } }
        settings:
          checkpoint: { dir: ../ckpt, every: 1h, keep: 5 }
        """

    /// A scratch tree with the UDFs and `gen_conversions.py` data (`impressions` impressions).
    static func joinTree(impressions: Int, seed: Int) throws -> URL {
        let dir = try SluiceBinary.scratch()
        try FileManager.default.removeItem(at: dir.appendingPathComponent("udfs"))
        try FileManager.default.copyItem(at: SluiceBinary.root.appendingPathComponent("udfs"), to: dir.appendingPathComponent("udfs"))
        let gen = Process()
        gen.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        gen.arguments = ["python3", SluiceBinary.root.appendingPathComponent("scripts/gen_conversions.py").path,
                         "data/imp.jsonl", "data/plays.jsonl", String(impressions), String(seed)]
        gen.currentDirectoryURL = dir
        try gen.run()
        guard waitForExit(gen) == 0 else { throw POSIXError(.EIO) }
        return dir
    }

    /// Reference join computed here: play event_id -> impressions of its key in the hour before it.
    static func reference(_ dir: URL) -> [String: Int] {
        var byKey: [String: [Int]] = [:]
        for i in StatefulRun.objects(dir, "data/imp.jsonl") { byKey["\(i["profile_id"]!):\(i["title_id"]!)", default: []].append(i["ts"] as! Int) }
        var expected: [String: Int] = [:]
        for p in StatefulRun.objects(dir, "data/plays.jsonl") {
            let ts = p["ts"] as! Int
            let n = (byKey["\(p["profile_id"]!):\(p["title_id"]!)"] ?? []).filter { ts - 3_600_000 <= $0 && $0 <= ts }.count
            if n > 0 { expected[p["event_id"] as! String] = n }
        }
        return expected
    }

    /// The line number (1-based) of each play in the plays file.
    static func playLines(_ dir: URL) -> [String: Int] {
        var out: [String: Int] = [:]
        for (i, line) in dir.lines("data/plays.jsonl").enumerated() {
            if let id = line.firstMatch(of: /"event_id":"([^"]+)"/)?.1 { out[String(id)] = i + 1 }
        }
        return out
    }

    /// `sluice checkpoints SPEC` lines.
    static func listing(_ dir: URL, _ spec: String) async throws -> [String] {
        let r = try await SluiceBinary.runAsync(["checkpoints", spec], cwd: dir)
        return r.stdoutLines
    }

    /// The line a source is at in a listing line (`NAME=byte B (line L)`).
    static func line(of source: String, in listing: String) -> Int? {
        (try? Regex("\(source)=byte [0-9]+ \\(line ([0-9]+)\\)")).flatMap { listing.firstMatch(of: $0) }
            .flatMap { Int($0.output[1].substring ?? "") }
    }

    /// Cuts a torn last line (a kill -9 in the middle of a write leaves one): it was not acknowledged,
    /// so the restarted run writes it again.
    static func dropTornLine(_ path: URL) throws {
        guard var data = FileManager.default.contents(atPath: path.path), let last = data.last, last != 0x0A else { return }
        while let l = data.last, l != 0x0A { data.removeLast() }
        try data.write(to: path)
    }

    @Test func killNineAtRandomPointsDuringAJoinOverFilesLosesNothing() async throws {
        let seed = UInt64(ProcessInfo.processInfo.environment["SLUICE_KILL_SEED"] ?? "") ?? UInt64.random(in: 1...1_000_000)
        print("CheckpointTests.killNine: seed \(seed) (SLUICE_KILL_SEED=\(seed) repeats it)")
        var rng = SeededRandom(seed)
        let dir = try Self.joinTree(impressions: 60_000, seed: 5)
        try dir.write(Self.joinSpec(every: "300ms"), to: "pipelines/j.yaml")
        let expected = Self.reference(dir)
        let lines = Self.playLines(dir)
        let out = dir.appendingPathComponent("out/conversions.jsonl")
        let ckpt = dir.appendingPathComponent("ckpt")
        func size() -> Int { (try? FileManager.default.attributesOfItem(atPath: out.path)[.size] as? Int) ?? 0 }
        func ids() -> Set<String> { Set(((try? FileManager.default.contentsOfDirectory(atPath: ckpt.path)) ?? []).filter { $0.hasSuffix(".sluice") }) }
        func eventID(_ line: Substring) -> String? { line.firstMatch(of: /"event_id":"([^"]+)"/).map { String($0.1) } }
        /// (byte offset, event_id) of each result line from `from` on.
        func results(from: Int) -> [(Int, String)] {
            let data = Array(FileManager.default.contents(atPath: out.path) ?? Data())
            var outList: [(Int, String)] = []
            var start = 0
            for (i, b) in data.enumerated() where b == 0x0A {
                if start >= from, let id = eventID(Substring(decoding: data[start..<i], as: UTF8.self)) { outList.append((start, id)) }
                start = i + 1
            }
            return outList
        }
        // A result written before checkpoint N started is in checkpoint N (its barrier came after it).
        // One checkpoint is in flight at a time, so N started after N-1 was durable: a result already
        // written when checkpoint N-1's file appeared must not be written again by a run that restores
        // N. The test samples the output size before each look at the directory, so `covered[N]` is a
        // size the output had before N-1 appeared.
        var kills = 0
        var duplicates = 0
        /// The previous run: where its output started, and for each checkpoint N it completed whose
        /// predecessor N-1 it completed too, a size its output had before N-1 was durable.
        var previous: (start: Int, bounds: [UInt64: Int]) = (0, [:])
        /// After a run that restored `restored` and appended from `before`: counts what it wrote again,
        /// and checks none of it was covered by the restored checkpoint.
        func checkRun(_ name: String, before: Int, restored: UInt64?) {
            let all = results(from: 0)
            let earlier = Set(all.filter { $0.0 < before }.map(\.1))
            let again = all.filter { $0.0 >= before && earlier.contains($0.1) }
            duplicates += again.count
            guard let restored, let bound = previous.bounds[restored] else { return }
            let covered = Set(all.filter { $0.0 >= previous.start && $0.0 < bound }.map(\.1))
            let wrong = again.filter { covered.contains($0.1) }
            #expect(wrong.isEmpty, "\(name): \(wrong.count) result(s) in checkpoint \(restored) written again, e.g. \(wrong.first?.1 ?? "")")
        }
        func checkpointIDs() -> Set<UInt64> {
            Set(ids().compactMap { UInt64($0.dropFirst(5).dropLast(7)) })
        }
        for round in 0..<8 {
            let before = size()
            let restored = checkpointIDs().max()
            let child = try ChildProcess(name: "kill-\(round)", executable: SluiceBinary.path, arguments: ["run", "pipelines/j.yaml"],
                                         cwd: dir, logDir: dir.appendingPathComponent("out"))
            let deadline = ContinuousClock.now + .milliseconds(200 + Int(rng.next() % 1000))
            var seen = checkpointIDs()
            var lastSize = before
            var appearedAfter: [UInt64: Int] = [:]   // checkpoint -> an output size from before it was durable
            while ContinuousClock.now < deadline && child.process.isRunning {
                let s = size()
                let now = checkpointIDs()
                for id in now.subtracting(seen) { appearedAfter[id] = lastSize }
                seen = now
                lastSize = s
                try await Task.sleep(for: .milliseconds(15))
            }
            let finished = !child.process.isRunning
            try await offPool { child.kill() }
            if finished { #expect(child.process.terminationStatus == 0, "\(child.log)") } else { kills += 1 }
            try Self.dropTornLine(out)
            checkRun("run \(round)", before: before, restored: restored)
            if finished { previous = (0, [:]); break }
            var bounds: [UInt64: Int] = [:]
            for (id, bound) in appearedAfter { bounds[id + 1] = bound }
            previous = (before, bounds)
        }
        let before = size()
        let restored = checkpointIDs().max()
        let last = try await SluiceBinary.runAsync(["run", "pipelines/j.yaml"], cwd: dir)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(!last.stderr.contains("unusable"), "\(last.stderr)")
        checkRun("last run", before: before, restored: restored)
        let got = StatefulRun.objects(dir, "out/conversions.jsonl")
        var union: [String: Int] = [:]
        for o in got {
            let id = o["event_id"] as! String, n = o["impressions"] as! Int
            #expect(union[id] == nil || union[id] == n, "\(id): a re-emitted result differs")
            union[id] = n
        }
        print("CheckpointTests.killNine: \(kills) kills, \(got.count) results for \(expected.count) plays matched, \(duplicates) written again")
        #expect(expected.count > 1000)
        #expect(union == expected)
        #expect(got.count - union.count == duplicates)
        #expect(dir.lines("out/dead_letter.jsonl").isEmpty)
    }

    @Test func sigtermThenRestartLosesAndDuplicatesNothing() async throws {
        let dir = try Self.joinTree(impressions: 60_000, seed: 9)
        let expected = Self.reference(dir)
        // The first run follows the plays file while it has only its first half, so the stop comes
        // mid-stream; the second run reads the whole file to its end.
        let plays = dir.lines("data/plays.jsonl")
        try Data((plays.prefix(plays.count / 2).joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("data/plays.jsonl"))
        try dir.write(Self.joinSpec(every: "10s", followPlays: true), to: "pipelines/follow.yaml")
        try dir.write(Self.joinSpec(every: "10s"), to: "pipelines/j.yaml")
        let child = try ChildProcess(name: "term", executable: SluiceBinary.path, arguments: ["run", "pipelines/follow.yaml"],
                                     cwd: dir, logDir: dir.appendingPathComponent("out"))
        // Any time after results appear is mid-stream: the followed input never ends by itself.
        let started = await eventually(timeout: .seconds(120)) { !dir.lines("out/conversions.jsonl").isEmpty }
        #expect(started, "\(child.log)")
        let status = try await offPool { child.terminate(timeout: 60) }
        #expect(status == 0, "\(child.log)")
        #expect(child.stderrText.contains("taken at stop"), "\(child.log)")
        try StatefulRun.append(Array(plays.dropFirst(plays.count / 2)), to: dir.appendingPathComponent("data/plays.jsonl").path)
        let second = try await SluiceBinary.runAsync(["run", "pipelines/j.yaml"], cwd: dir)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("restoring checkpoint"), "\(second.stderr)")
        #expect(second.stderr.contains("resuming"), "\(second.stderr)")
        let got = StatefulRun.objects(dir, "out/conversions.jsonl")
        let ids = got.map { $0["event_id"] as! String }
        #expect(Set(ids).count == ids.count, "\(ids.count - Set(ids).count) duplicated")
        #expect(Dictionary(ids.map { ($0, 1) }, uniquingKeysWith: +).count == expected.count)
        #expect(Dictionary(got.map { ($0["event_id"] as! String, $0["impressions"] as! Int) }, uniquingKeysWith: { a, _ in a }) == expected)
    }

    /// Three runs over a growing file: three checkpoints, each at the end of what was there.
    static func threeCheckpoints() async throws -> (dir: URL, chunks: [[String]]) {
        let dir = try SluiceBinary.scratch()
        try dir.write(Self.copySpec, to: "pipelines/c.yaml")
        let chunks = (0..<3).map { c in (0..<10).map { #"{"chunk":\#(c),"n":\#($0)}"# } }
        for chunk in chunks {
            try StatefulRun.append(chunk, to: dir.appendingPathComponent("data/in.jsonl").path)
            let r = try await SluiceBinary.runAsync(["run", "pipelines/c.yaml"], cwd: dir)
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(dir.lines("out/out.jsonl") == chunks.flatMap { $0 })
        return (dir, chunks)
    }

    @Test func tornTruncatedAndBitFlippedCheckpointsAreReportedAndThePreviousOneUsed() async throws {
        for damage in ["truncated", "bit-flipped", "torn"] {
            let (dir, chunks) = try await Self.threeCheckpoints()
            let ckpt = dir.appendingPathComponent("ckpt")
            let newest = ckpt.appendingPathComponent("ckpt-0000000003.sluice")
            var bytes = try Data(contentsOf: newest)
            switch damage {
            case "truncated": bytes = bytes.prefix(bytes.count / 2)
            case "bit-flipped": bytes[bytes.count / 2] ^= 0x10
            default:
                // A crash between write and rename leaves a temporary file, and one torn at the end.
                try bytes.prefix(bytes.count - 3).write(to: ckpt.appendingPathComponent(".ckpt-0000000004.tmp"))
                bytes = bytes.prefix(bytes.count - 1)
            }
            try bytes.write(to: newest)
            let listed = try await Self.listing(dir, "pipelines/c.yaml")
            #expect(listed.count == 3 && listed[2].hasPrefix("3  unusable"), "\(damage): \(listed)")
            let r = try await SluiceBinary.runAsync(["run", "pipelines/c.yaml"], cwd: dir)
            #expect(r.status == 0, "\(damage): \(r.stderr)")
            #expect(r.stderr.contains("checkpoint 3 is unusable, skipped"), "\(damage): \(r.stderr)")
            #expect(r.stderr.contains("restoring checkpoint 2"), "\(damage): \(r.stderr)")
            // Checkpoint 2 ends after chunk 1: chunk 2 is written again; nothing is missing.
            #expect(dir.lines("out/out.jsonl") == chunks.flatMap { $0 } + chunks[2], "\(damage)")
            // The next start has a good checkpoint again and does not loop on the bad one.
            let again = try await SluiceBinary.runAsync(["run", "pipelines/c.yaml"], cwd: dir)
            #expect(again.status == 0 && !again.stderr.contains("restoring checkpoint 2"), "\(damage): \(again.stderr)")
            #expect(dir.lines("out/out.jsonl").count == 40, "\(damage)")
        }
    }

    @Test func aReplacedInputFileIsReadFromItsStart() async throws {
        let (dir, chunks) = try await Self.threeCheckpoints()
        // Unchanged: the restart resumes at the end and writes nothing.
        let same = try await SluiceBinary.runAsync(["run", "pipelines/c.yaml"], cwd: dir)
        #expect(same.stderr.contains("resuming"), "\(same.stderr)")
        #expect(dir.lines("out/out.jsonl").count == 30)
        // Replaced by another file (a new inode, other bytes, as long): read from its start.
        let replacement = (0..<30).map { #"{"chunk":9,"n":\#($0 + 10)}"# }
        let tmp = dir.appendingPathComponent("data/new.jsonl")
        try Data((replacement.joined(separator: "\n") + "\n").utf8).write(to: tmp)
        #expect(rename(tmp.path, dir.appendingPathComponent("data/in.jsonl").path) == 0)
        let r = try await SluiceBinary.runAsync(["run", "pipelines/c.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("is not the file the checkpoint read"), "\(r.stderr)")
        #expect(dir.lines("out/out.jsonl") == chunks.flatMap { $0 } + replacement)
    }

    @Test func rewindByIdAndByTimeRestatesFromThere() async throws {
        let (dir, chunks) = try await Self.threeCheckpoints()
        let listed = try await Self.listing(dir, "pipelines/c.yaml")
        #expect(listed.count == 3)
        #expect(listed.map { String($0.prefix { $0 != " " }) } == ["1", "2", "3"], "oldest first, id first: \(listed)")
        #expect(listed.map { Self.line(of: "in", in: $0) } == [10, 20, 30], "\(listed)")
        let times = listed.map { String($0.split(separator: " ")[1]) }

        // By id: checkpoint 2 ends after chunk 1, so chunk 2 is restated.
        let byID = try await SluiceBinary.runAsync(["rewind", "pipelines/c.yaml", "--to", "2"], cwd: dir)
        #expect(byID.status == 0, "\(byID.stderr)")
        #expect(byID.stdout.contains("restores checkpoint 2"), "\(byID.stdout)")
        let r1 = try await SluiceBinary.runAsync(["run", "pipelines/c.yaml"], cwd: dir)
        #expect(r1.stderr.contains("restoring checkpoint 2"), "\(r1.stderr)")
        #expect(dir.lines("out/out.jsonl") == chunks.flatMap { $0 } + chunks[2])
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("ckpt/REWIND").path), "restatement ended")

        // By time: the latest checkpoint at or before checkpoint 1's time is checkpoint 1.
        let byTime = try await SluiceBinary.runAsync(["rewind", "pipelines/c.yaml", "--to", times[0]], cwd: dir)
        #expect(byTime.stdout.contains("restores checkpoint 1"), "\(byTime.stdout) \(byTime.stderr)")
        _ = try await SluiceBinary.runAsync(["run", "pipelines/c.yaml"], cwd: dir)
        #expect(dir.lines("out/out.jsonl") == chunks.flatMap { $0 } + chunks[2] + chunks[1] + chunks[2])

        // Before every checkpoint: empty state, the file from its start.
        let before = try await SluiceBinary.runAsync(["rewind", "pipelines/c.yaml", "--to", "2001-01-01T00:00:00Z"], cwd: dir)
        #expect(before.stdout.contains("no checkpoint at or before"), "\(before.stdout)")
        _ = try await SluiceBinary.runAsync(["run", "pipelines/c.yaml"], cwd: dir)
        #expect(dir.lines("out/out.jsonl") == chunks.flatMap { $0 } + chunks[2] + chunks[1] + chunks[2] + chunks.flatMap { $0 })

        let unknown = try await SluiceBinary.runAsync(["rewind", "pipelines/c.yaml", "--to", "99"], cwd: dir)
        #expect(unknown.status == 1 && unknown.stderr.contains("no usable checkpoint 99"), "\(unknown.stderr)")
    }
}

/// SplitMix64: a small seeded generator, so a failing kill schedule can be replayed.
struct SeededRandom {
    private var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension CheckpointTests {
    /// The README's restatement walkthrough, run as written (`sh -e`) in a copy of the repository.
    @Test func theReadmeRestatementWalkthroughRestatesTheBadRelease() async throws {
        let readme = try String(contentsOf: SluiceBinary.root.appendingPathComponent("README.md"), encoding: .utf8)
        let marker = try #require(readme.range(of: "<!-- restatement-walkthrough -->\n```sh\n"))
        let script = String(readme[marker.upperBound...].prefix { _ in true }.split(separator: "```", maxSplits: 1)[0])
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-restate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for sub in ["pipelines", "udfs", "data"] {
            try FileManager.default.copyItem(at: SluiceBinary.root.appendingPathComponent(sub), to: dir.appendingPathComponent(sub))
        }
        let bin = URL(fileURLWithPath: SluiceBinary.path).deletingLastPathComponent().path
        let path = bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let r = try await offPool {
            let p = SluiceBinary.Running()
            p.process.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.process.arguments = ["-e", "-c", script]
            p.process.currentDirectoryURL = dir
            p.process.environment = ProcessInfo.processInfo.environment.merging(["PATH": path]) { $1 }
            p.process.standardInput = p.stdin
            p.process.standardOutput = p.stdout
            p.process.standardError = p.stderr
            p.startReading()
            try p.process.run()
            try p.stdin.fileHandleForWriting.close()
            return p.finish()
        }
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let listing = r.stdoutLines.filter { $0.first?.isNumber == true }
        #expect(listing.count == 2 && listing[0].hasPrefix("1  ") && listing[1].hasPrefix("2  "), "\(r.stdout)")
        #expect(listing.first?.contains("plays=byte 225248 (line 1000)") == true, "\(listing)")
        let hash = { (l: String) in l.firstMatch(of: /udf v\d+ \(([0-9a-f]+)\)/).map { String($0.1) } }
        #expect(listing.count == 2 && hash(listing[0]) != nil && hash(listing[0]) != hash(listing[1]), "\(listing)")
        #expect(r.stdout.contains("restores checkpoint 1"), "\(r.stdout)")
        let plays = StatefulRun.objects(dir, "data/plays.sample.jsonl")
        let watched = StatefulRun.objects(dir, "out/restatement/watched.jsonl")
        #expect(watched.count == 3000)
        func minutes(_ o: [String: Any]) -> Int { o["minutes"] as? Int ?? -1 }
        func right(_ i: Int) -> Int { (plays[i]["duration_ms"] as? Int ?? 0) / 60000 }
        func wrong(_ i: Int) -> Int { (plays[i]["duration_ms"] as? Int ?? 0) / 6000 }
        guard watched.count == 3000 else { return }
        #expect((0..<1000).allSatisfy { minutes(watched[$0]) == right($0) }, "plays 1-1000 before the release")
        #expect((1000..<2000).allSatisfy { minutes(watched[$0]) == wrong($0) }, "plays 1001-2000 with the bad release")
        #expect((2000..<3000).allSatisfy { minutes(watched[$0]) == right($0 - 1000) && watched[$0]["event_id"] as? String == plays[$0 - 1000]["event_id"] as? String },
                "plays 1001-2000 restated")
    }
}

extension CheckpointTests {
    /// A source paused by `max_drift` (far ahead of its peer) must not hold checkpoints back: its
    /// barrier is taken while it waits.
    @Test func checkpointsCompleteWhileASourceIsPausedByMaxDrift() async throws {
        let dir = try SluiceBinary.scratch()
        let t0: Int64 = 1_700_000_000_000
        try StatefulRun.append((0..<200).map { #"{"k":"k\#($0 % 5)","ts":\#(t0 + Int64($0) * 10_000)}"# }, to: dir.appendingPathComponent("data/a.jsonl").path)
        try StatefulRun.append((0..<10).map { #"{"k":"k\#($0 % 5)","ts":\#(t0 + Int64($0) * 10_000)}"# }, to: dir.appendingPathComponent("data/b.jsonl").path)
        try dir.write("""
            pipeline: ckpt-drift
            sources:
              a: { file: { path: ../data/a.jsonl, follow: true }, time: ts, idle: 1h }
              b: { file: { path: ../data/b.jsonl, follow: true }, time: ts, idle: 1h }
            transforms:
              j: { join: { left: { from: a, key: '{k}' }, right: { from: b, key: '{k}' }, within: 1h } }
            sinks:
              o: { from: j, file: { path: ../out/o.jsonl } }
            settings: { batch_size: 10, max_drift: 1m, checkpoint: { dir: ../ckpt, every: 100ms, keep: 1000 } }
            """, to: "pipelines/d.yaml")
        let child = try ChildProcess(name: "drift", executable: SluiceBinary.path, arguments: ["run", "pipelines/d.yaml"],
                                     cwd: dir, logDir: dir.appendingPathComponent("out"))
        defer { child.kill() }
        func count() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("ckpt").path)) ?? []).filter { $0.hasSuffix(".sluice") }.count }
        // Source a is paused at once (its watermark passes b's by more than a minute within its first batches).
        #expect(await eventually(timeout: .seconds(30)) { count() >= 2 }, "\(child.log)")
        let before = count()
        #expect(await eventually(timeout: .seconds(30)) { count() >= before + 3 }, "checkpoints stopped while a was paused: \(child.log)")
        let listing = try await Self.listing(dir, "pipelines/d.yaml")
        #expect(listing.last.flatMap { Self.line(of: "a", in: $0) }.map { $0 < 200 } == true, "a was not paused: \(listing.last ?? "")")
        let status = try await offPool { child.terminate(timeout: 30) }
        #expect(status == 0, "\(child.log)")
    }
}

extension CheckpointTests {
    @Test func checkpointCommandsExplainWhatIsWrong() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("sources: { in: { stdin: {} } }\nsinks: { out: { from: in, stdout: {} } }\n", to: "pipelines/none.yaml")
        let none = try await SluiceBinary.runAsync(["checkpoints", "pipelines/none.yaml"], cwd: dir)
        #expect(none.status == 2 && none.stderr.contains("has no 'checkpoint' in 'settings'"), "\(none.stderr)")
        try dir.write(Self.copySpec, to: "pipelines/c.yaml")
        let empty = try await SluiceBinary.runAsync(["checkpoints", "pipelines/c.yaml"], cwd: dir)
        #expect(empty.status == 0 && empty.stdout.isEmpty && empty.stderr.contains("no checkpoints in"), "\(empty.stderr)")
        let bad = try await SluiceBinary.runAsync(["rewind", "pipelines/c.yaml", "--to", "yesterday"], cwd: dir)
        #expect(bad.status == 2 && bad.stderr.contains("expected a checkpoint id or an RFC 3339 time"), "\(bad.stderr)")
        // A directory that cannot be made fails the start, instead of a run that never checkpoints.
        try dir.write("{}\n", to: "data/in.jsonl")
        try dir.write(Self.copySpec.replacingOccurrences(of: "dir: ../ckpt", with: "dir: ../data/in.jsonl/ckpt"), to: "pipelines/bad.yaml")
        let unwritable = try await SluiceBinary.runAsync(["run", "pipelines/bad.yaml"], cwd: dir)
        #expect(unwritable.status == 1 && unwritable.stderr.contains("cannot create the checkpoint directory") && unwritable.stderr.contains("Not a directory"),
                "\(unwritable.stderr)")
    }
}
