import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Helpers for end-to-end tests of stateful pipelines: appending to followed files, reading the
/// admin endpoint (`settings.admin.listen: 127.0.0.1:0`, the port is logged on stderr) and
/// picking single values out of `/metrics`.
enum StatefulRun {
    /// Appends `lines` (each newline-terminated) to the file at `path` in one write.
    static func append(_ lines: [String], to path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        let bytes = Array(lines.map { $0 + "\n" }.joined().utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw POSIXError(.EIO) }
    }

    /// The admin port from `sluice: info: admin endpoint on http://127.0.0.1:PORT ...`.
    static func adminPort(_ stderr: [String]) -> Int? {
        for line in stderr {
            if let m = line.firstMatch(of: /admin endpoint on http:\/\/[0-9.]+:(\d+)/) { return Int(m.1) }
        }
        return nil
    }

    /// `GET path` on 127.0.0.1:port with a 2 s receive timeout; the body, or nil.
    static func get(_ path: String, port: Int) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return nil }
        let req = Array("GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8)
        _ = req.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        return text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) }
    }

    /// The value of the sample `family{...label="value"...}` in a `/metrics` body.
    static func metric(_ body: String, _ family: String, label: String) -> Double? {
        for line in body.split(separator: "\n") where line.hasPrefix(family + "{") && line.contains(label) {
            if let v = line.split(separator: " ").last.flatMap({ Double($0) }) { return v }
        }
        return nil
    }

    /// Reads one sample from the admin endpoint (nil while it does not answer).
    static func sample(port: Int, _ family: String, label: String) -> Double? {
        get("/metrics", port: port).flatMap { metric($0, family, label: label) }
    }

    /// JSON objects of the lines of a file under `dir`.
    static func objects(_ dir: URL, _ path: String) -> [[String: Any]] {
        dir.lines(path).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}
