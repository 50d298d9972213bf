import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `GET /topology`, `GET /tap/COMPONENT` with `sluice tap`, and `sluice top`, on a running pipeline
/// through the built binary.
@Suite struct OperationsTests {
    @Test func topologyNamesEveryComponentWithItsKindStageEdgesAndLiveFigures() async throws {
        let dir = try SluiceBinary.scratch()
        try OpsPipeline.write(into: dir)
        let (run, port) = try await OpsPipeline.start(dir)
        defer { run.send(SIGKILL) }
        // Rates are over the last second: wait until events have flowed for more than one.
        var t: [String: Any]?
        let flowing = try await eventuallyAsync {
            t = try await OpsPipeline.topology(port: port)
            return (OpsPipeline.node(t, "all")?["in_per_s"] as? Double ?? 0) > 0
                && (OpsPipeline.node(t, "plays")?["in_per_s"] as? Double ?? 0) > 0
        }
        #expect(flowing, "\(String(describing: t))")
        let nodes = t?["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.map { $0["name"] as? String ?? "?" } == OpsPipeline.components)
        #expect(nodes.map { $0["kind"] as? String ?? "?" }
                == ["source", "transform", "transform", "transform", "transform", "sink", "sink", "dead_letter"])
        #expect(nodes.map { $0["type"] as? String ?? "?" }
                == ["generate", "filter match", "project", "map gen.tag", "dedup", "file", "file", "file"])
        #expect(nodes.map { $0["stage"] as? Int ?? -1 } == [0, 0, 0, 0, 1, -1, -1, -1])
        let edges = (t?["edges"] as? [[String: Any]] ?? []).map { "\($0["from"] ?? "")->\($0["to"] ?? "")\(($0["when"] as? Bool) == true ? " when" : "")" }
        #expect(edges == ["plays->long", "long->shaped", "shaped->tagged", "tagged->unique", "tagged->us when", "unique->all"])
        let stages = (t?["stages"] as? [[String: Any]] ?? []).map { "\($0["stage"] ?? "") \($0["name"] ?? "") \($0["parallelism"] ?? "")" }
        #expect(stages == ["0 stateless 2", "1 unique 2"])
        #expect((t?["udf"] as? [String: Any])?["version"] as? Int == 1)
        #expect((t?["udf"] as? [String: Any])?["reload"] as? String == "signal")
        #expect(t?["pipeline"] as? String == "ops")
        #expect(t?["phase"] as? String == "running")

        // Queues: stage 0 reads the work queue (in batches), the dedup its inboxes, sinks their own.
        func queue(_ name: String) -> [String: Any]? { OpsPipeline.node(t, name)?["queue"] as? [String: Any] }
        #expect(OpsPipeline.node(t, "plays")?["queue"] is NSNull)
        #expect(queue("long")?["unit"] as? String == "batches")
        #expect(queue("long")?["capacity"] as? Int == 8)
        #expect(queue("unique")?["unit"] as? String == "events")
        #expect(queue("all")?["capacity"] as? Int == 500)
        #expect(queue("dead_letter")?["capacity"] as? Int == 4096)
        let fill = queue("all")?["fill"] as? Double ?? -1
        #expect(fill >= 0 && fill <= 1)

        // Counters add up: the filter keeps what the projection gets, the map dead-letters multiples of 50.
        let long = OpsPipeline.node(t, "long") ?? [:], shaped = OpsPipeline.node(t, "shaped") ?? [:]
        #expect(long["emitted"] as? Int == shaped["received"] as? Int)
        #expect((OpsPipeline.node(t, "tagged")?["dead_lettered"] as? Int ?? 0) > 0)
        #expect((OpsPipeline.node(t, "plays")?["received"] as? Int ?? 0) >= (long["emitted"] as? Int ?? 0))
        let op = OpsPipeline.node(t, "unique")?["operator"] as? [String: Any]
        #expect((op?["keys"] as? Int ?? 0) > 0, "\(String(describing: op))")
        #expect((op?["state_bytes"] as? Int ?? 0) > 0)
        #expect(op?.keys.contains("watermark_ms") == true)
        #expect(OpsPipeline.node(t, "plays")?["kafka"] == nil)
    }

    @Test func tapPrintsRealEventsOfEachComponent() async throws {
        let dir = try SluiceBinary.scratch()
        try OpsPipeline.write(into: dir)
        let (run, port) = try await OpsPipeline.start(dir)
        defer { run.send(SIGKILL) }
        let url = "http://127.0.0.1:\(port)"
        func tap(_ component: String, _ n: Int = 5) async throws -> [[String: Any]] {
            let r = try await SluiceBinary.runAsync(["tap", url, component, "-n", String(n)])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdoutLines.count == n, "\(component): \(r.stdout)")
            return r.stdoutLines.compactMap(OpsPipeline.object)
        }
        // The source: what the generator made (every field).
        for e in try await tap("plays") {
            let seq = e["seq"] as? Int ?? -1
            #expect(Set(e.keys) == ["seq", "ts", "country", "duration_ms", "os"])
            #expect(e["duration_ms"] as? Int == OpsPipeline.duration(seq))
        }
        // The filter (fused with the projection after it): only long plays, still every field.
        for e in try await tap("long") {
            #expect(Set(e.keys) == ["seq", "ts", "country", "duration_ms", "os"])
            #expect((e["duration_ms"] as? Int ?? 0) > 60000)
        }
        // The projection: its fields only, of long plays.
        for e in try await tap("shaped") {
            #expect(Set(e.keys) == ["seq", "ts", "country", "os"])
            #expect(OpsPipeline.duration(e["seq"] as? Int ?? 0) > 60000)
        }
        // The map and the sink behind its `when`: tagged with the version, US only.
        for e in try await tap("us") {
            #expect(e["country"] as? String == "US")
            #expect(e["v"] as? Int == 1)
            #expect((e["seq"] as? Int ?? 0) % 50 != 0)
        }
        // The dead letter sink: the map's failures, with the reason.
        for e in try await tap("dead_letter", 2) {
            #expect(e["component"] as? String == "tagged")
            #expect((e["reason"] as? String ?? "").contains("is a multiple of 50"), "\(e)")
        }
        let unknown = try await SluiceBinary.runAsync(["tap", url, "nope"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("no component 'nope'; components: plays, long, shaped, tagged, unique, us, all, dead_letter"),
                "\(unknown.stderr)")
        #expect(try await offPool { AdminEndpointTests.request("GET", "/tap/us?n=0", port: port)?.0 } == 400)
    }

    @Test func aTapReaderThatNeverReadsDoesNotSlowOrBlockThePipeline() async throws {
        let dir = try SluiceBinary.scratch()
        try dir.write("""
        pipeline: stuck-tap
        sources: { s: { stdin: {} } }
        transforms: { shaped: { from: s, project: { seq: seq } } }
        sinks: { o: { from: shaped, file: { path: ../out/o.jsonl }, queue: { capacity: 64, when_full: block } } }
        settings: { admin: { listen: 127.0.0.1:0 } }
        """, to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        let port = try await offPool { () -> Int? in
            run.waitForStderr { StatefulRun.adminPort($0) != nil }
            return StatefulRun.adminPort(run.stderrLines)
        }
        let adminPort = try #require(port)
        // A reader with a tiny receive buffer that asks for 100,000 events and never reads one.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var small: Int32 = 2048
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(adminPort).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(connected == 0)
        let request = Array("GET /tap/shaped?n=100000 HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        #expect(request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == request.count)
        // The tap is open: a second reader of the same component is refused.
        #expect(try await eventuallyAsync { try await offPool { AdminEndpointTests.request("GET", "/tap/shaped?n=1", port: adminPort)?.0 } == 409 })

        let total = 60_000
        let started = ContinuousClock.now
        try await offPool {
            for chunk in stride(from: 0, to: total, by: 5_000) { run.feed(.seqLines(chunk..<(chunk + 5_000))) }
        }
        #expect(await eventually(timeout: .seconds(60)) { dir.lines("out/o.jsonl").count == total })
        // The tap did sample and write (its bytes wait unread in our socket buffer).
        var pending: Int32 = 0
        _ = ioctl(fd, UInt(FIONREAD), &pending)
        #expect(pending > 0)
        let result = try await offPool { run.finish() }
        let took = ContinuousClock.now - started
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("read \(total) events; wrote o=\(total)"), "\(result.stderr)")
        #expect(took < .seconds(60), "took \(took)")
        let lines = dir.lines("out/o.jsonl")
        #expect(lines.first == #"{"seq":0}"# && lines.last == "{\"seq\":\(total - 1)}")
    }

    @Test func topUnderTmuxShowsEveryComponentWithItsRate() async throws {
        let dir = try SluiceBinary.scratch()
        try OpsPipeline.write(into: dir)
        let (run, port) = try await OpsPipeline.start(dir)
        defer { run.send(SIGKILL) }
        let session = "sluice-top-\(getpid())-\(port)"
        let started = try await offPool {
            try SluiceTmux.run(["new-session", "-d", "-s", session, "-x", "150", "-y", "30",
                                "\(SluiceBinary.path) top http://127.0.0.1:\(port)"]).status
        }
        #expect(started == 0)
        defer { _ = try? SluiceTmux.run(["kill-server"]) }   // our own socket's server only
        var screen = ""
        let shown = try await eventuallyAsync {
            screen = try await offPool { try SluiceTmux.capture(session) }
            let rows = screen.split(separator: "\n").map(String.init)
            let named = OpsPipeline.components.allSatisfy { c in rows.contains { $0.hasPrefix(c + " ") } }
            // The source's IN/S column is its fourth.
            let plays = rows.first { $0.hasPrefix("plays ") }?.split(separator: " ", omittingEmptySubsequences: true) ?? []
            return named && plays.count >= 5 && (Double(plays[3]) ?? 0) > 0
        }
        #expect(shown, "\(screen)")
        #expect(screen.contains("ops  phase running  udf version 1"), "\(screen)")
        #expect(screen.contains("COMPONENT") && screen.contains("IN/S") && screen.contains("QUEUE"), "\(screen)")
    }
}

/// tmux on a socket of its own (`-L`), for driving terminal programs in tests. Spawned with
/// posix_spawn and waitpid: a tmux client that starts the server daemon can leave Foundation's
/// `Process` waiting forever.
enum SluiceTmux {
    static let socket = "sluice-test-\(getpid())"

    /// Runs `tmux -L SOCKET args...`; its exit status and stdout.
    @discardableResult
    static func run(_ args: [String]) throws -> (status: Int32, stdout: String) {
        // An fd closed by another thread between the listing and the spawn fails it (EBADF): try again.
        for _ in 0..<5 {
            if let result = try spawn(args) { return result }
        }
        throw POSIXError(.EBADF)
    }

    private static func spawn(_ args: [String]) throws -> (status: Int32, stdout: String)? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.EMFILE) }
        defer { close(fds[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        // Nothing else of this process leaks into tmux (its server outlives the client): not another
        // test's pipe, whose reader would then never see the end of it.
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(entry), fd > 2, fd != fds[0], fd != fds[1], fcntl(fd, F_GETFD) >= 0 {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
        }
        // Nor the test thread's blocked signals and ignored dispositions: `kill-server` and SIGTERM must work.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = (["tmux", "-L", socket] + args).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, "tmux", &actions, &attributes, argv, environ)
        close(fds[1])
        if rc == EBADF { return nil }
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .ENOENT) }
        // The server daemon may keep the pipe open: read only what the client wrote before it exited.
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return ((status >> 8) & 0xff, String(decoding: out, as: UTF8.self))
    }

    /// The visible screen of `session`.
    static func capture(_ session: String) throws -> String {
        try run(["capture-pane", "-p", "-t", session]).stdout
    }
}

/// Kafka lag per partition in `GET /topology`, against the dev broker.
@Suite struct KafkaLagTopologyTests {
    @Test func lagPerPartitionIsTheHighWatermarkMinusTheCommittedOffset() async throws {
        let scratch = try KafkaScratch()
        defer { scratch.remove() }
        let kafka = try await offPool { try DevKafka(topics: ["ev": 2], dir: scratch.dir) }
        defer { kafka.stop() }
        try await offPool {
            try kafka.produce(Kafka.seqEvents(100), topic: "ev", partition: 0)
            try kafka.produce(Kafka.seqEvents(60, start: 100), topic: "ev", partition: 1)
        }
        try scratch.dir.write("""
        pipeline: lag
        sources: { ev: { kafka: { brokers: '\(kafka.bootstrap)', topics: [ev], group: lag, start: earliest } } }
        sinks: { o: { from: ev, file: { path: ../out/o.jsonl } } }
        settings: { admin: { listen: 127.0.0.1:0 } }
        """, to: "pipelines/p.yaml")
        let run = try scratch.run("pipelines/p.yaml")
        defer { run.kill() }
        #expect(await eventually(timeout: .seconds(60)) { scratch.dir.lines("out/o.jsonl").count == 160 }, "\(run.log)")
        let port = try #require(StatefulRun.adminPort(run.stderrText.split(separator: "\n").map(String.init)))
        // Everything is written and acknowledged: lag 0 on both partitions, at their high watermarks.
        var partitions: [[String: Any]] = []
        let caughtUp = try await eventuallyAsync(timeout: 20) {
            let t = try await OpsPipeline.topology(port: port)
            partitions = (OpsPipeline.node(t, "ev")?["kafka"] as? [String: Any])?["partitions"] as? [[String: Any]] ?? []
            return partitions.map { "\($0["partition"] ?? "") \($0["high"] ?? "") \($0["committed"] ?? "") \($0["lag"] ?? "")" }
                == ["0 100 100 0", "1 60 60 0"]
        }
        #expect(caughtUp, "\(partitions)")
        #expect(partitions.allSatisfy { $0["topic"] as? String == "ev" })
        #expect(run.terminate() == 0)
    }
}
