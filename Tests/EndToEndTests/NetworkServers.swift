import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Real servers for the network sink tests, each its own process on a free loopback port:
/// Debian's `memcached`, and `scripts/http-sink-server.py` (faults on demand). Tests stop them
/// from `defer`.
enum Loopback {
    /// A TCP port nothing listens on right now.
    static func freePort() -> UInt16 { UInt16(AdminEndpointTests.freePort()) }

    /// Connects to 127.0.0.1:`port`, sends `request`, reads until the peer closes or `until` holds
    /// for what was read; nil when nothing listens. Bounded by a 5 s receive timeout.
    static func exchange(port: UInt16, _ request: [UInt8], until: (([UInt8]) -> Bool)? = nil) -> [UInt8]? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return nil }
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return nil }
            sent += n
        }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let until, until(out) { break }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return out
    }
}

/// `memcached` on a free port; `stop()` kills it, `start()` runs it again on the same port (empty).
final class MemcachedProcess: @unchecked Sendable {
    let port: UInt16
    private var process: Process?

    init() throws {
        port = Loopback.freePort()
        try start()
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Kafka.which("memcached"))
        p.arguments = ["-l", "127.0.0.1", "-p", "\(port)", "-U", "0", "-m", "64", "-t", "1"] + (getuid() == 0 ? ["-u", "root"] : [])
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        // Ready once it answers.
        _ = Kafka.waitUntil(timeout: 10, every: 0.02) { Loopback.exchange(port: port, Array("version\r\n".utf8), until: { $0.last == 0x0A }) != nil }
    }

    /// SIGKILL: the server is gone at once (and its items with it).
    func stop() {
        guard let p = process else { return }
        process = nil
        if p.isRunning { killAndReap(p) }
    }

    /// The value stored under `key`, or nil.
    func get(_ key: String) -> String? {
        guard let reply = Loopback.exchange(port: port, Array("get \(key)\r\n".utf8), until: { Self.complete($0) }) else { return nil }
        let text = String(decoding: reply, as: UTF8.self)
        guard text.hasPrefix("VALUE ") else { return nil }
        let lines = text.components(separatedBy: "\r\n")
        return lines.count > 1 ? lines[1] : nil
    }

    /// Values of many keys at once (one `get` with all of them): key -> value.
    func getMany(_ keys: [String]) -> [String: String] {
        var out: [String: String] = [:]
        for chunk in stride(from: 0, to: keys.count, by: 100).map({ Array(keys[$0..<min(keys.count, $0 + 100)]) }) {
            guard let reply = Loopback.exchange(port: port, Array("get \(chunk.joined(separator: " "))\r\n".utf8), until: { Self.complete($0) })
            else { continue }
            let lines = String(decoding: reply, as: UTF8.self).components(separatedBy: "\r\n")
            var i = 0
            while i + 1 < lines.count {
                let parts = lines[i].split(separator: " ")
                if parts.count >= 4, parts[0] == "VALUE" { out[String(parts[1])] = lines[i + 1]; i += 2 } else { i += 1 }
            }
        }
        return out
    }

    private static func complete(_ reply: [UInt8]) -> Bool {
        reply.count >= 5 && Array(reply.suffix(5)) == Array("END\r\n".utf8)
    }

    deinit { stop() }
}

/// `scripts/http-sink-server.py` on a free port, storing what it accepts in `received`.
final class HTTPSinkServer: @unchecked Sendable {
    let process = Process()
    let port: UInt16
    let received: URL

    init(dir: URL) throws {
        received = dir.appendingPathComponent("received.jsonl")
        port = Loopback.freePort()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", SluiceBinary.root.appendingPathComponent("scripts/http-sink-server.py").path,
                             "--port", "\(port)", "--out", received.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        _ = Kafka.waitUntil(timeout: 10, every: 0.02) { (try? stats()) != nil }
    }

    var url: String { "http://127.0.0.1:\(port)/ingest" }

    /// POST /control with `json` (see the script's doc).
    @discardableResult
    func control(_ json: String) -> Bool {
        request("POST", "/control", body: json)?.hasPrefix("HTTP/1.1 200") == true
    }

    /// GET /stats: requests, answers by status, events accepted.
    func stats() throws -> (requests: Int, statuses: [String: Int], events: Int) {
        guard let text = request("GET", "/stats", body: ""), let start = text.range(of: "\r\n\r\n") else {
            throw CocoaError(.fileReadUnknown)
        }
        let doc = try JSONSerialization.jsonObject(with: Data(text[start.upperBound...].utf8)) as? [String: Any] ?? [:]
        return (doc["requests"] as? Int ?? 0, doc["statuses"] as? [String: Int] ?? [:], doc["events"] as? Int ?? 0)
    }

    private func request(_ method: String, _ path: String, body: String) -> String? {
        let head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
        return Loopback.exchange(port: port, Array((head + body).utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    private var stopped = false

    func stop() {
        guard !stopped else { return }
        stopped = true
        if process.isRunning { killAndReap(process) }
    }

    deinit { stop() }
}

/// Resident memory of a process in KiB (VmRSS), or nil.
func residentKiB(_ pid: Int32) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
    return Int(line.split(separator: " ").dropFirst().first ?? "")
}
