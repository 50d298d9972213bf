import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 client for a running pipeline's admin endpoint (`sluice tap`, `sluice top`):
/// plain `http://HOST:PORT`, one GET per connection, the body read until the server closes.
struct AdminClient: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    let host: String
    let port: String
    /// Path prefix of the endpoint (empty, or `/sluice` behind a proxy), without a trailing slash.
    let prefix: String

    /// Parses `http://127.0.0.1:9464`, `127.0.0.1:9464` or `localhost:9464/prefix`.
    init(url: String) throws(Failure) {
        var rest = Substring(url)
        if rest.hasPrefix("http://") { rest = rest.dropFirst(7) }
        else if rest.contains("://") { throw Failure(description: "\(url): only http:// admin addresses are supported") }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        guard let colon = authority.lastIndex(of: ":"), !authority[..<colon].isEmpty,
              let p = Int(authority[authority.index(after: colon)...]), (1...65535).contains(p) else {
            throw Failure(description: "\(url): expected http://HOST:PORT (the admin listen address of the pipeline)")
        }
        var h = String(authority[..<colon])
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        host = h
        port = String(p)
        prefix = path
    }

    /// GETs `path` and hands the body to `body` chunk by chunk as it arrives, with the status code;
    /// `body` returns false to stop reading. Returns the status code.
    func get(_ path: String, timeoutSeconds: Int = 5, body: (_ status: Int, _ chunk: [UInt8]) -> Bool) throws(Failure) -> Int {
        let fd = try connect()
        defer { close(fd) }
        let request = "GET \(prefix)\(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: sluice\r\nConnection: close\r\n\r\n"
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw Failure(description: "cannot send to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        var head: [UInt8] = []
        var status: Int?
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            let chunk = Array(buffer[0..<n])
            if let status {
                if !body(status, chunk) { break }
                continue
            }
            head += chunk
            guard let end = Self.headerEnd(head) else {
                if head.count > 64 * 1024 { throw Failure(description: "\(host):\(port): response header too large") }
                continue
            }
            let line = String(decoding: head.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
            guard line.count >= 2, line[0].hasPrefix("HTTP/"), let code = Int(line[1]) else {
                throw Failure(description: "\(host):\(port) did not answer HTTP")
            }
            status = code
            let rest = Array(head[end...])
            if !rest.isEmpty, !body(code, rest) { break }
        }
        guard let status else { throw Failure(description: "\(host):\(port) closed the connection without an answer") }
        return status
    }

    /// GETs `path` and returns (status, whole body).
    func fetch(_ path: String) throws(Failure) -> (status: Int, body: [UInt8]) {
        var all: [UInt8] = []
        let status = try get(path) { all += $1; return true }
        return (status, all)
    }

    private static func headerEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i + 4 }
        return nil
    }

    private func connect() throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, port, &hints, &list)
        guard rc == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                reason = String(cString: strerror(errno))
                close(fd)
            }
            ai = a.pointee.ai_next
        }
        throw Failure(description: "cannot connect to \(host):\(port): \(reason) (is the pipeline running with settings.admin?)")
    }
}
