import Foundation
import Testing
import Synchronization
import SluiceHTTP
#if canImport(Glibc)
import Glibc
#endif

/// The libcurl-multi client against `scripts/http-sink-server.py` in its own process.
@Suite struct HTTPClientTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Starts the server; returns it and its port.
    func server() throws -> (Process, Int) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.root.appendingPathComponent("scripts/http-sink-server.py").path, "--port", "0"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        let port = Int(text.split(separator: ":").last?.prefix { $0.isNumber } ?? "") ?? 0
        return (p, port)
    }

    func awaitResult(_ client: HTTPClient, _ request: HTTPRequest) async -> Result<HTTPResponse, HTTPTransportError> {
        await withCheckedContinuation { c in client.send(request) { c.resume(returning: $0) } }
    }

    @Test func manyRequestsRunAtOnceOnOneIOThread() async throws {
        let (p, port) = try server()
        defer { killAndReap(p) }
        let client = try HTTPClient(name: "test")
        defer { client.close() }
        let control = HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/control", body: Array(#"{"latency_ms": 400}"#.utf8))
        #expect(try await awaitResult(client, control).get().status == 200)
        let start = ContinuousClock.now
        let statuses = await withTaskGroup(of: Int.self) { group in
            for i in 0..<30 {
                group.addTask {
                    let r = HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/ingest", body: Array("{\"n\":\(i)}\n".utf8))
                    return (try? await awaitResult(client, r).get().status) ?? -1
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - start
        #expect(statuses.count == 30 && statuses.allSatisfy { $0 == 200 })
        // Overlap seen by the server, not wall time (a loaded machine stretches that arbitrarily).
        let stats = try await awaitResult(client, HTTPRequest(url: "http://127.0.0.1:\(port)/stats")).get()
        let doc = try JSONSerialization.jsonObject(with: Data(stats.body)) as? [String: Any]
        let overlap = doc?["max_in_flight"] as? Int ?? 0
        #expect(overlap >= 10, "at most \(overlap) of 30 requests of 400 ms were in flight at once (took \(elapsed))")
    }

    @Test func statusHeadersBodyAndTransportErrorsAreReported() async throws {
        let (p, port) = try server()
        defer { killAndReap(p) }
        let client = try HTTPClient(name: "test")
        let control = HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/control",
                                  body: Array(#"{"status": 503, "retry_after": 7, "body": "later"}"#.utf8))
        _ = await awaitResult(client, control)
        let r = try await awaitResult(client, HTTPRequest(method: "POST", url: "http://127.0.0.1:\(port)/ingest", body: [0x7B, 0x7D])).get()
        #expect(r.status == 503 && r.retryAfterSeconds == 7 && r.bodyExcerpt() == "later")
        kill(p.processIdentifier, SIGKILL)
        #expect(await eventually { !p.isRunning })
        let refused = await awaitResult(client, HTTPRequest(url: "http://127.0.0.1:\(port)/stats", timeoutMilliseconds: 2000))
        guard case .failure(let error) = refused else { Issue.record("expected a transport error"); return }
        #expect(error.message.localizedCaseInsensitiveContains("connect"), "\(error)")
        client.close()
        let closed = await awaitResult(client, HTTPRequest(url: "http://127.0.0.1:\(port)/stats"))
        guard case .failure(let e2) = closed else { Issue.record("expected closed"); return }
        #expect(e2.message == "HTTP client closed")
    }
}

/// SIGKILL and reap without Foundation's `waitUntilExit`, which can spin forever on Linux when it
/// misses a child's exit (as `killAndReap` in EndToEndTests).
private func killAndReap(_ p: Process) {
    let pid = p.processIdentifier
    kill(pid, SIGKILL)
    let deadline = Date(timeIntervalSinceNow: 10)
    while Date() < deadline && p.isRunning {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid || (r < 0 && errno == ECHILD) { return }
        usleep(5_000)
    }
}
