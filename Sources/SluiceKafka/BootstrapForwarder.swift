import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A fixed bootstrap port for the dev broker. librdkafka 2.0.2's mock brokers always listen on
/// OS-chosen ports, so `sluice dev kafka --port P` listens on 127.0.0.1:P and relays each connection
/// byte for byte to the first broker. Kafka clients only use the bootstrap address for their first
/// metadata request; they then connect to the brokers' advertised (random) ports directly.
///
/// Each connection is relayed by its own thread with `poll(2)`; `stop()` closes the listener.
/// Thread safety: `listener` is written once in init and only closed by `stop()` (guarded by `lock`).
public final class BootstrapForwarder: @unchecked Sendable {
    public let port: Int
    private let lock = NSLock()
    private var listener: Int32

    /// `target` is `host:port[,more]`; the first entry is used.
    public init(port: Int, target: String, log: @escaping KafkaLog) throws(KafkaError) {
        guard let first = target.split(separator: ",").first,
              let colon = first.lastIndex(of: ":"), let targetPort = UInt16(first[first.index(after: colon)...]) else {
            throw KafkaError(code: -186, message: "bad target address '\(target)'")
        }
        let targetHost = String(first[..<colon])
        guard (1...65535).contains(port) else { throw KafkaError(code: -186, message: "port must be 1...65535") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw KafkaError(code: -195, message: "socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let text = String(cString: strerror(errno))
            close(fd)
            throw KafkaError(code: -195, message: "cannot listen on 127.0.0.1:\(port): \(text)")
        }
        self.port = port
        self.listener = fd
        let accepting = Thread {
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 {
                    if errno == EINTR || errno == ECONNABORTED { continue }
                    return   // listener closed by stop()
                }
                let relay = Thread {
                    defer { close(client) }
                    guard let upstream = connectTCP(host: targetHost, port: targetPort) else {
                        log("warning", "bootstrap forwarder: cannot connect to \(targetHost):\(targetPort)")
                        return
                    }
                    defer { close(upstream) }
                    relayBytes(client, upstream)
                }
                relay.name = "sluice-dev-kafka-relay"
                relay.start()
            }
        }
        accepting.name = "sluice-dev-kafka-forwarder"
        accepting.start()
    }

    /// Stops accepting connections.
    public func stop() {
        lock.lock(); defer { lock.unlock() }
        if listener >= 0 {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
            listener = -1
        }
    }
}

private func connectTCP(host: String, port: UInt16) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(port.bigEndian)
    addr.sin_addr.s_addr = inet_addr(host == "localhost" ? "127.0.0.1" : host)
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if rc != 0 { close(fd); return nil }
    return fd
}

/// Copies bytes both ways until either side closes.
private func relayBytes(_ a: Int32, _ b: Int32) {
    var fds = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
    let size = 64 * 1024
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
    defer { buffer.deallocate() }
    while true {
        let ready = poll(&fds, 2, -1)
        if ready < 0 { if errno == EINTR { continue }; return }
        for i in 0..<2 where fds[i].revents != 0 {
            let from = fds[i].fd, to = fds[1 - i].fd
            let n = read(from, buffer, size)
            if n <= 0 { return }
            var sent = 0
            while sent < n {
                let w = write(to, buffer + sent, n - sent)
                if w < 0 { if errno == EINTR { continue }; return }
                sent += w
            }
        }
    }
}
