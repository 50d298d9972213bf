#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A minimal HTTP/1.1 endpoint for operators and orchestrators, on its own thread:
/// one request per connection, a 1 s read timeout, 8 KiB request cap. IPv4 only.
/// A streaming response (`GET /tap`) gets a thread of its own, at most `maxStreams` at once.
final class AdminServer: Sendable {
    struct Request: Sendable {
        var method: String
        var path: String
        /// Query parameters (`?n=20`), undecoded.
        var query: [String: String] = [:]
    }

    struct Response: Sendable {
        var status: Int
        var contentType = "text/plain; charset=utf-8"
        var body: String
        /// Instead of `body`: writes the body on a thread of its own until it returns, then the
        /// connection closes (no Content-Length; the end of the stream is the end of the body).
        var stream: (@Sendable (AdminStream) -> Void)? = nil
        /// Runs instead of `stream` when the stream is refused (too many open): releases what the route took.
        var refused: (@Sendable () -> Void)? = nil
    }

    /// Streaming responses open at once beyond which `serve` answers 503.
    static let maxStreams = 8

    private let fd: Int32
    private let streams = Atomic<Int>(0)
    /// The bound port (useful with `listen: 127.0.0.1:0`).
    let port: Int

    init(host: String, port: Int) throws(PipelineError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw PipelineError(message: "admin: cannot create a socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        let ip = host == "localhost" ? "127.0.0.1" : host
        guard inet_pton(AF_INET, ip, &addr.sin_addr) == 1 else {
            close(fd)
            throw PipelineError(message: "admin: '\(host)' is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw PipelineError(message: "admin: cannot listen on \(host):\(port): \(reason)")
        }
        var actual = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: actual.sin_port))
    }

    deinit { close(fd) }

    /// Serves requests until `stopped()` returns true (checked every 200 ms); `tick` runs at least as often.
    func serve(stopped: () -> Bool, tick: () -> Void = {}, respond: (Request) -> Response) {
        while !stopped() {
            tick()
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            if !handle(client, respond) { close(client) }
        }
    }

    /// Answers one request. Returns true when a stream thread took over the connection.
    private func handle(_ client: Int32, _ respond: (Request) -> Response) -> Bool {
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 2048)
        while request.count < 8192 {
            let n = chunk.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            request.append(contentsOf: chunk[0..<n])
            if request.count >= 4, request.suffix(4) == [13, 10, 13, 10] { break }
            if request.firstIndex(of: 10) != nil && request.contains(where: { $0 == 13 }) == false { break }
        }
        let line = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self).split(separator: " ")
        var response: Response
        if line.count >= 2 {
            let target = line[1].split(separator: "?", maxSplits: 1)
            var query: [String: String] = [:]
            if target.count == 2 {
                for pair in target[1].split(separator: "&") {
                    let kv = pair.split(separator: "=", maxSplits: 1)
                    query[String(kv[0])] = kv.count == 2 ? String(kv[1]) : ""
                }
            }
            response = respond(Request(method: String(line[0]), path: String(target.first ?? ""), query: query))
        } else {
            response = Response(status: 400, body: "bad request\n")
        }
        if response.stream != nil, streams.add(1, ordering: .relaxed).newValue > Self.maxStreams {
            streams.subtract(1, ordering: .relaxed)
            response.refused?()
            response = Response(status: 503, body: "too many streams open (at most \(Self.maxStreams)); try again later\n")
        }
        let reason = [200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
                      503: "Service Unavailable"][response.status] ?? "OK"
        guard let stream = response.stream else {
            let body = Array(response.body.utf8)
            let head = "HTTP/1.1 \(response.status) \(reason)\r\nContent-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            _ = AdminStream.writeAll(client, Array(head.utf8) + body)
            return false
        }
        // A reader that stops reading makes a write wait at most this long; the stream then ends.
        var sendTimeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        let head = "HTTP/1.1 \(response.status) \(reason)\r\nContent-Type: \(response.contentType)\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        let out = AdminStream(fd: client)
        let thread = Thread { [self] in
            if out.write(Array(head.utf8)) { stream(out) }
            close(client)
            streams.subtract(1, ordering: .relaxed)
        }
        thread.name = "sluice-admin-stream"
        thread.start()
        return true
    }
}

/// The connection of a streaming response, owned by its stream thread.
struct AdminStream: Sendable {
    let fd: Int32

    /// Writes all of `bytes`; false once the peer is gone or has not read for the send timeout.
    func write(_ bytes: [UInt8]) -> Bool { Self.writeAll(fd, bytes) }

    /// True when the peer closed or reset its end.
    var peerClosed: Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 0) > 0 else { return false }
        if pfd.revents & Int16(POLLHUP | POLLERR) != 0 { return true }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                off += n
            }
            return true
        }
    }
}
