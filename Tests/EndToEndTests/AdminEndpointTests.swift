import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The admin endpoint of a running pipeline, spoken to over a real TCP socket.
@Suite struct AdminEndpointTests {
    /// A port that was free a moment ago.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// One HTTP request; returns (status, body) or nil if nothing answers.
    static func request(_ method: String, _ path: String, port: Int) -> (Int, String)? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { return nil }
        let req = Array("\(method) \(path) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = req.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let status = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
              let body = text.range(of: "\r\n\r\n").map({ String(text[$0.upperBound...]) }) else { return nil }
        return (status, body)
    }

    @Test func checkpointFiguresAreInMetrics() async throws {
        let dir = try SluiceBinary.scratch()
        let port = Self.freePort()
        try dir.write("""
        pipeline: ckpt-metrics
        sources: { s: { stdin: {}, time: ts } }
        transforms: { d: { dedup: { from: s, key: '{id}', within: 1h } } }
        sinks: { o: { from: d, file: { path: ../out/o.jsonl } } }
        settings: { admin: { listen: '127.0.0.1:\(port)' }, checkpoint: { dir: ../ckpt, every: 100ms, keep: 2 } }
        """, to: "pipelines/p.yaml")
        let running = SluiceBinary.start(["run", "pipelines/p.yaml"], cwd: dir)
        try running.process.run()
        running.stdin.fileHandleForWriting.write(Data((0..<50).map { #"{"id":\#($0 % 10),"ts":\#(1_700_000_000_000 + $0)}"# }.joined(separator: "\n").utf8 + [10]))
        var metrics = ""
        #expect(await eventually(timeout: .seconds(30)) {
            metrics = Self.request("GET", "/metrics", port: port)?.1 ?? ""
            let written = metrics.split(separator: "\n").first { $0.hasPrefix("sluice_checkpoints_written_total") }
            return written.map { !$0.hasSuffix(" 0") } ?? false
        }, "\(metrics)")
        #expect(metrics.contains(#"sluice_checkpoints_failed_total{pipeline="ckpt-metrics"} 0"#), "\(metrics)")
        let bytes = metrics.split(separator: "\n").first { $0.hasPrefix("sluice_checkpoint_last_state_bytes") }
        #expect(bytes.flatMap { $0.split(separator: " ").last.flatMap { Int($0) } }.map { $0 > 0 } == true, "\(metrics)")
        try running.stdin.fileHandleForWriting.close()
        let result = try await offPool { running.finish() }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(dir.lines("out/o.jsonl").count == 10)
    }

    @Test func metricsHealthReadyAndReloadAnswerWhileThePipelineRuns() async throws {
        let dir = try SluiceBinary.scratch()
        let port = Self.freePort()
        try dir.write("local M = {}\nfunction M.f(e, ctx) ctx.count(\"seen\"); e.v = ctx.version; return e end\nreturn M\n", to: "udfs/m.lua")
        try dir.write("""
        pipeline: admin-test
        udfs: { reload: signal }
        sources: { s: { stdin: {} } }
        transforms: { t: { from: s, map: { udf: m.f } } }
        sinks: { o: { from: t, file: { path: ../out/o.jsonl } } }
        settings: { admin: { listen: '127.0.0.1:\(port)' } }
        """, to: "pipelines/p.yaml")
        let running = SluiceBinary.start(["run", "pipelines/p.yaml"], cwd: dir)
        try running.process.run()
        let stdin = running.stdin.fileHandleForWriting
        stdin.write(Data("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n".utf8))
        #expect(await eventually(timeout: .seconds(20)) { dir.lines("out/o.jsonl").count == 3 }, "\(dir.lines("out/o.jsonl"))")

        let health = Self.request("GET", "/health", port: port)
        #expect(health?.0 == 200)
        let ready = Self.request("GET", "/ready", port: port)
        #expect(ready?.0 == 200)
        #expect(ready?.1.contains("udf version: 1") == true, "\(ready?.1 ?? "")")
        let metrics = Self.request("GET", "/metrics", port: port)?.1 ?? ""
        #expect(metrics.contains(#"sluice_events_emitted_total{pipeline="admin-test",component="o"} 3"#), "\(metrics)")
        #expect(metrics.contains(#"sluice_udf_version{pipeline="admin-test"} 1"#))
        #expect(metrics.contains(#"sluice_udf_counter_total{pipeline="admin-test",metric="seen"} 3"#))
        #expect(Self.request("POST", "/reload", port: port)?.0 == 202)
        var version = ""
        _ = await eventually(timeout: .seconds(20)) {
            version = (Self.request("GET", "/metrics", port: port)?.1 ?? "").split(separator: "\n").first { $0.hasPrefix("sluice_udf_version") }.map(String.init) ?? ""
            return version.contains("} 2")
        }
        #expect(version == #"sluice_udf_version{pipeline="admin-test"} 2"#)
        #expect(Self.request("GET", "/nope", port: port)?.0 == 404)
        stdin.write(Data("{\"n\":4}\n".utf8))
        try stdin.close()
        let r = try await offPool { running.finish() }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(dir.lines("out/o.jsonl").last == #"{"n":4,"v":2}"#)
    }
}
