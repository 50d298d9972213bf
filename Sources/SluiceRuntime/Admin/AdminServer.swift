#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A minimal HTTP/1.1 endpoint for operators and orchestrators, on its own thread:
/// one request per connection, a 1 s read timeout, 8 KiB request cap. IPv4 only.
final class AdminServer: Sendable {
    struct Response: Sendable {
        var status: Int
        var contentType = "text/plain; charset=utf-8"
        var body: String
    }

    private let fd: Int32
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

    /// Serves requests until `stopped()` returns true (checked every 200 ms).
    func serve(stopped: () -> Bool, respond: (_ method: String, _ path: String) -> Response) {
        while !stopped() {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 200) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            handle(client, respond)
            close(client)
        }
    }

    private func handle(_ client: Int32, _ respond: (String, String) -> Response) {
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
        let response: Response
        if line.count >= 2 {
            let path = String(line[1].split(separator: "?", maxSplits: 1).first ?? "")
            response = respond(String(line[0]), path)
        } else {
            response = Response(status: 400, body: "bad request\n")
        }
        let reason = [200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"][response.status] ?? "OK"
        let body = Array(response.body.utf8)
        let head = "HTTP/1.1 \(response.status) \(reason)\r\nContent-Type: \(response.contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        let bytes = Array(head.utf8) + body
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(client, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { break }
                off += n
            }
        }
    }
}
