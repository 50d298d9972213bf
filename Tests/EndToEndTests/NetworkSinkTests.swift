import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP and memcached sinks against real servers in their own processes (Debian's memcached,
/// `scripts/http-sink-server.py`), driven through the built binary. Waits poll with deadlines; the
/// deadlines only keep a broken run from hanging the suite.
@Suite struct NetworkSinkTests {
    func seqEvents(_ range: Range<Int>, version: Int = 1) -> String {
        range.map { #"{"id":\#($0),"v":\#(version),"pad":"\#(String(repeating: "x", count: 60))"}"# + "\n" }.joined()
    }

    /// The `id` of each line: an event, or a dead letter (whose event is an escaped JSON string).
    func ids(_ lines: [String]) -> [Int] {
        lines.compactMap { line in
            guard let r = line.range(of: #"id\":"#) ?? line.range(of: #""id":"#) else { return nil }
            return Int(line[r.upperBound...].prefix { $0.isNumber })
        }
    }

    /// What the server accepted, one event a line.
    func received(_ server: HTTPSinkServer) -> [String] {
        ((try? String(contentsOfFile: server.received.path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func startSluice(_ dir: URL, _ spec: String) throws -> ChildProcess {
        try dir.write(spec, to: "pipelines/p.yaml")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: true)
        return try ChildProcess(name: "sluice", executable: SluiceBinary.path, arguments: ["run", "pipelines/p.yaml"], cwd: dir,
                                logDir: dir.appendingPathComponent("logs"))
    }

    // MARK: memcached

    @Test func aMemcachedServerKilledForSecondsThenRestartedGetsEveryEventAndItsKeysNeverMove() async throws {
        let dir = try SluiceBinary.scratch()
        let a = try MemcachedProcess(), b = try MemcachedProcess()
        defer { a.stop(); b.stop() }
        let child = try startSluice(dir, """
        pipeline: mc
        sources: { s: { stdin: {} } }
        sinks:
          cache:
            from: s
            memcached: { servers: [127.0.0.1:\(a.port), 127.0.0.1:\(b.port)], key: 'ev:{id}', ttl: 1h, timeout: 500ms, connections: 3 }
            retry: { max: 2000, backoff: 50ms..300ms }
        dead_letter: { file: { path: ../out/dead.jsonl } }
        """)
        defer { child.kill() }
        let n = 400
        let keys = (0..<n).map { "ev:\($0)" }
        func version(_ value: String?) -> Int? {
            guard let value, let r = value.range(of: #""v":"#) else { return nil }
            return Int(value[r.upperBound...].prefix { $0.isNumber })
        }

        // Phase 1: every key lands on exactly one of the two servers; that server owns it.
        child.stdin.fileHandleForWriting.write(Data(seqEvents(0..<n).utf8))
        let stored = await eventually(timeout: .seconds(60)) { a.getMany(keys).count + b.getMany(keys).count == n }
        #expect(stored, "\(child.log)")
        let onA = Set(a.getMany(keys).keys), onB = Set(b.getMany(keys).keys)
        #expect(onA.isDisjoint(with: onB) && onA.count + onB.count == n)
        #expect(!onA.isEmpty && !onB.isEmpty, "consistent hashing should spread \(n) keys over both servers")

        // Phase 2: server B is killed, the same keys are set again (version 2).
        b.stop()
        child.stdin.fileHandleForWriting.write(Data(seqEvents(0..<n, version: 2).utf8))
        let retrying = await eventually(timeout: .seconds(60)) { child.stderrText.contains("retry 1 of 2000") }
        #expect(retrying, "\(child.log)")
        let aMoves = await eventually(timeout: .seconds(60)) { a.getMany(Array(onA)).values.contains { version($0) == 2 } }
        #expect(aMoves, "keys of the live server are still set while the other is down")
        try await Task.sleep(for: .seconds(2))   // the outage: B stays down a while longer
        try b.start()
        try child.stdin.fileHandleForWriting.close()
        let status = try await offPool { child.wait(timeout: 120) }
        #expect(status == 0, "\(child.log)")

        // Every version-2 event is on its owner; none went to the other server.
        let finalA = a.getMany(keys), finalB = b.getMany(keys)
        #expect(Set(finalA.keys) == onA, "server A holds exactly its own keys")
        #expect(Set(finalB.keys) == onB, "server B holds exactly its own keys again")
        #expect(finalA.values.allSatisfy { version($0) == 2 } && finalB.values.allSatisfy { version($0) == 2 })
        #expect(dir.lines("out/dead.jsonl").isEmpty)
        #expect(child.stderrText.contains("wrote cache=\(2 * n); dead-lettered 0"), "\(child.log)")
    }

    @Test func theTitleViewsMemcachedExamplePublishesEveryTitlesTotals() async throws {
        let dir = try SluiceBinary.scratch()
        for sub in ["pipelines", "data"] {
            try? FileManager.default.removeItem(at: dir.appendingPathComponent(sub))
            try FileManager.default.copyItem(at: SluiceBinary.root.appendingPathComponent(sub), to: dir.appendingPathComponent(sub))
        }
        let server = try MemcachedProcess()
        defer { server.stop() }
        let r = try await SluiceBinary.runAsync(["run", "pipelines/title-views-memcached.yaml"], cwd: dir,
                                                environment: ["MEMCACHED_SERVERS": "127.0.0.1:\(server.port)"])
        #expect(r.status == 0, "\(r.stderr)")
        // Reference: unique plays (event_id within 10 minutes) and distinct viewers per title.
        var seen: [String: Int] = [:]
        var plays: [String: Int] = [:]
        var viewers: [String: Set<String>] = [:]
        for line in dir.lines("data/conversion-plays.sample.jsonl") {
            guard let p = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            let id = p["event_id"] as! String, ts = p["ts"] as! Int
            if let k = seen[id], abs(ts - k) <= 600_000 { continue }
            seen[id] = max(seen[id] ?? ts, ts)
            plays["\(p["title_id"]!)", default: 0] += 1
            viewers["\(p["title_id"]!)", default: []].insert(p["profile_id"] as! String)
        }
        #expect(plays.count > 50)
        let got = server.getMany(plays.keys.map { "title-views:\($0)" })
        #expect(got.count == plays.count)
        for (title, count) in plays {
            let value = try #require(got["title-views:\(title)"], "title \(title) missing")
            let o = try #require(try JSONSerialization.jsonObject(with: Data(value.utf8)) as? [String: Any])
            #expect(o["plays"] as? Int == count && o["viewers"] as? Int == viewers[title]?.count, "title \(title): \(value)")
        }
        // The README's command and the line it shows.
        let shown: String = try await offPool {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Kafka.which("memccat"))
            p.arguments = ["--servers=127.0.0.1:\(server.port)", "title-views:610"]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            _ = waitForExit(p, timeout: 60)
            return String(decoding: data, as: UTF8.self)
        }
        #expect(shown.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"key":"610","plays":1,"viewers":1,"watched_ms":4068379,"title_id":610}"#)
    }

    // MARK: HTTP

    @Test func http503WithRetryAfterForSecondsLosesNothingKeepsMemoryFlatAndTheOtherSinkIsUnaffected() async throws {
        let dir = try SluiceBinary.scratch()
        let server = try HTTPSinkServer(dir: dir)
        defer { server.stop() }
        #expect(server.control(#"{"status": 503, "retry_after": 1, "body": "maintenance"}"#))
        let child = try startSluice(dir, """
        pipeline: outage
        sources: { s: { stdin: {} } }
        sinks:
          hook:
            from: s
            http: { url: '\(server.url)', batch: 200, linger: 20ms, timeout: 2s }
            queue: { capacity: 20000, when_full: block }
            retry: { max: 1000, backoff: 100ms..1s }
          archive: { from: s, file: { path: ../out/archive.jsonl } }
        dead_letter: { file: { path: ../out/dead.jsonl } }
        """)
        defer { child.kill() }
        let n = 10_000
        child.stdin.fileHandleForWriting.write(Data(seqEvents(0..<n).utf8))

        // The other sink gets everything while the HTTP sink is refused.
        let archived = await eventually(timeout: .seconds(120)) { dir.lines("out/archive.jsonl").count == n }
        #expect(archived, "\(child.log)")
        let refused = await eventually(timeout: .seconds(60)) { ((try? server.stats().statuses["503"]) ?? 0) >= 2 }
        #expect(refused, "\(child.log)")
        let before = try server.stats().statuses["503"] ?? 0
        let rss1 = residentKiB(child.pid) ?? 0
        // Three more Retry-After rounds (about 3 s): memory stays where it was.
        let waited = await eventually(timeout: .seconds(60)) { ((try? server.stats().statuses["503"]) ?? 0) >= before + 3 }
        #expect(waited)
        let rss2 = residentKiB(child.pid) ?? 0
        #expect(rss1 > 0 && rss2 - rss1 < 4096, "resident memory grew from \(rss1) KiB to \(rss2) KiB while retrying")
        #expect(try server.stats().events == 0)
        #expect(child.stderrText.contains("retry 1 of 1000 in 1.0 seconds"), "Retry-After is honoured: \(child.log)")

        // The server comes back: every event arrives once, nothing is dead-lettered.
        #expect(server.control(#"{"reset": true}"#))
        try child.stdin.fileHandleForWriting.close()
        let status = try await offPool { child.wait(timeout: 120) }
        #expect(status == 0, "\(child.log)")
        let got = ids(received(server))
        #expect(got.count == n && Set(got) == Set(0..<n), "\(got.count) events received, \(Set(got).count) distinct")
        #expect(dir.lines("out/dead.jsonl").isEmpty)
    }

    @Test func aRetryingSinkWithDeadLetterOverflowSendsOnlyItsOwnOverflowToTheDeadLetterSink() async throws {
        let dir = try SluiceBinary.scratch()
        let server = try HTTPSinkServer(dir: dir)
        defer { server.stop() }
        #expect(server.control(#"{"status": 503, "retry_after": 1}"#))
        let child = try startSluice(dir, """
        pipeline: overflow
        sources: { s: { stdin: {} } }
        sinks:
          hook:
            from: s
            http: { url: '\(server.url)', batch: 100, linger: 5ms }
            queue: { capacity: 100, when_full: dead_letter }
            retry: { max: 1000, backoff: 100ms..1s }
          archive: { from: s, file: { path: ../out/archive.jsonl } }
        dead_letter: { file: { path: ../out/dead.jsonl } }
        """)
        defer { child.kill() }
        let n = 3000
        child.stdin.fileHandleForWriting.write(Data(seqEvents(0..<n).utf8))
        let archived = await eventually(timeout: .seconds(120)) { dir.lines("out/archive.jsonl").count == n }
        #expect(archived, "the other sink is not held up: \(child.log)")
        #expect(server.control(#"{"reset": true}"#))
        try child.stdin.fileHandleForWriting.close()
        let status = try await offPool { child.wait(timeout: 120) }
        #expect(status == 0, "\(child.log)")
        let dead = dir.lines("out/dead.jsonl")
        let delivered = ids(received(server))
        #expect(!dead.isEmpty && dead.allSatisfy { $0.contains(#""reason":"sink 'hook' queue full""#) }, "\(dead.prefix(2))")
        let deadIDs = ids(dead)
        #expect(delivered.count + deadIDs.count == n && Set(delivered + deadIDs) == Set(0..<n),
                "\(delivered.count) delivered + \(deadIDs.count) dead-lettered, every event exactly once")
    }

    @Test func http4xxDeadLettersTheBatchAtOnceWithTheStatusAndABodyExcerpt() async throws {
        let dir = try SluiceBinary.scratch()
        let server = try HTTPSinkServer(dir: dir)
        defer { server.stop() }
        #expect(server.control(#"{"status": 422, "body": "field 'title' is required"}"#))
        try dir.write("""
        pipeline: rejected
        sources: { s: { stdin: {} } }
        sinks:
          hook: { from: s, http: { url: '\(server.url)', format: json_array }, retry: { max: 5, backoff: 1s..2s } }
        dead_letter: { file: { path: ../out/dead.jsonl } }
        """, to: "pipelines/p.yaml")
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], stdin: seqEvents(0..<5), cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let dead = dir.lines("out/dead.jsonl")
        #expect(dead.count == 5)
        #expect(dead.allSatisfy { $0.contains(#""component":"hook","reason":"http: status 422: field 'title' is required""#) }, "\(dead.first ?? "")")
        let stats = try server.stats()
        #expect(stats.requests == 1 && stats.events == 0, "a 4xx is not retried: \(stats)")
    }

    @Test func http5xxAndDroppedConnectionsAreRetriedThenDeadLetteredWithTheLastError() async throws {
        let dir = try SluiceBinary.scratch()
        let server = try HTTPSinkServer(dir: dir)
        defer { server.stop() }
        try dir.write("""
        pipeline: failing
        sources: { s: { stdin: {} } }
        sinks:
          hook: { from: s, http: { url: '\(server.url)' }, retry: { max: 2, backoff: 10ms..20ms } }
        dead_letter: { file: { path: ../out/dead.jsonl } }
        """, to: "pipelines/p.yaml")
        #expect(server.control(#"{"status": 500, "body": "boom"}"#))
        let r = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], stdin: seqEvents(0..<3), cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try server.stats().statuses["500"] == 3, "one attempt and two retries")
        var dead = dir.lines("out/dead.jsonl")
        #expect(dead.count == 3 && dead.allSatisfy { $0.contains("http: status 500: boom (after 2 retries)") }, "\(dead)")

        #expect(server.control(#"{"reset": true, "drop": true}"#))
        let r2 = try await SluiceBinary.runAsync(["run", "pipelines/p.yaml"], stdin: seqEvents(3..<5), cwd: dir)
        #expect(r2.status == 0, "\(r2.stderr)")
        dead = dir.lines("out/dead.jsonl")
        #expect(dead.count == 5 && dead.suffix(2).allSatisfy { $0.contains("(after 2 retries)") && $0.contains(#""reason":"http: "#) }, "\(dead)")
        #expect(try server.stats().events == 0)
    }
}
