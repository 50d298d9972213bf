import CMemcached
import Foundation
import Synchronization
import SluiceCore
import SluiceSpec

/// `memcached:` sink: `set` of each event (its JSON bytes) under the key rendered from the template,
/// with `ttl`, over libmemcached's text protocol. Keys are spread over `servers` by consistent
/// hashing (ketama), and a server that is down is never ejected from the ring: its keys fail (and are
/// retried by `RetryingOutput`) until it is back, never silently moved or skipped.
///
/// An event counts as delivered when the server answered `STORED`. A key that memcached cannot take
/// (empty, longer than 250 bytes, with spaces or control characters) or a value over the server's
/// item size fails permanently, so it is dead-lettered at once.
final class MemcachedOutput: SinkOutput {
    let sink: String
    let key: KeyTemplate
    let ttl: Int
    /// One per `connections`; a key always goes to the same lane, so sets of one key keep their order.
    /// Lane 0 runs on the sink's thread, the others on threads of their own.
    private let lanes: [MemcachedLane]

    init(sink: String, spec: MemcachedSinkSpec) throws(SinkError) {
        self.sink = sink
        do { key = try KeyTemplate(spec.key) } catch { throw SinkError(sink: sink, message: "\(error)") }
        ttl = Int(spec.ttl)
        var lanes: [MemcachedLane] = []
        for n in 0..<max(1, spec.connections) {
            lanes.append(MemcachedLane(try Connection(sink: sink, servers: spec.servers, timeoutMs: spec.timeout),
                                       thread: n == 0 ? nil : "sluice-sink-\(sink)-\(n)"))
        }
        self.lanes = lanes
    }

    func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
        var failures: [DeliveryFailure] = []
        var work = Array(repeating: [(index: Int, key: [UInt8])](), count: lanes.count)
        var k: [UInt8] = []
        for i in 0..<batch.count {
            guard key.renderComplete(batch.payload(i), into: &k) else {
                failures.append(DeliveryFailure(index: i, reason: "memcached: key template '\(key.description)' has a missing or null field", retry: .permanent))
                continue
            }
            if let bad = Self.invalidKey(k) {
                failures.append(DeliveryFailure(index: i, reason: "memcached: invalid key '\(String(decoding: k.prefix(80), as: UTF8.self))': \(bad)", retry: .permanent))
                continue
            }
            work[lanes.count == 1 ? 0 : Self.lane(of: k, among: lanes.count)].append((i, k))
        }
        let others = Mutex<[DeliveryFailure]>([])
        let group = DispatchGroup()
        for n in 1..<lanes.count where !work[n].isEmpty {
            group.enter()
            lanes[n].submit(MemcachedLane.Job(batch: batch, items: work[n], ttl: ttl) { f in
                others.withLock { $0 += f }
                group.leave()
            })
        }
        failures += lanes[0].run(batch: batch, items: work[0], ttl: ttl)
        group.wait()
        failures += others.withLock { $0 }
        done(failures.sorted { $0.index < $1.index })
    }

    func close() { for lane in lanes { lane.close() } }

    /// FNV-1a of the key, onto `count` lanes.
    static func lane(of key: [UInt8], among count: Int) -> Int {
        var h: UInt64 = 0xcbf29ce484222325
        for b in key { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return Int(h % UInt64(count))
    }

    /// Why memcached's text protocol would refuse `key`, or nil.
    static func invalidKey(_ key: [UInt8]) -> String? {
        if key.isEmpty { return "empty" }
        if key.count > 250 { return "\(key.count) bytes (at most 250)" }
        if key.contains(where: { $0 <= 0x20 || $0 == 0x7F }) { return "spaces and control characters are not allowed" }
        return nil
    }

    /// Owns one `memcached_st`; freed when the output goes.
    final class Connection {
        let sink: String
        private let handle: UnsafeMutablePointer<memcached_st>

        init(sink: String, servers: [String], timeoutMs: Int64) throws(SinkError) {
            self.sink = sink
            guard let h = memcached_create(nil) else { throw SinkError(sink: sink, message: "memcached_create failed") }
            handle = h
            let ms = UInt64(max(1, timeoutMs))
            let behaviours: [(memcached_behavior_t, UInt64)] = [
                (MEMCACHED_BEHAVIOR_DISTRIBUTION, UInt64(MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA.rawValue)),
                (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
                (MEMCACHED_BEHAVIOR_TCP_NODELAY, 1),
                (MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, ms),
                (MEMCACHED_BEHAVIOR_POLL_TIMEOUT, ms),
                (MEMCACHED_BEHAVIOR_RCV_TIMEOUT, ms * 1000),
                (MEMCACHED_BEHAVIOR_SND_TIMEOUT, ms * 1000),
                // A down server stays in the ring (its keys fail and are retried, never remapped) and
                // is tried again after a second.
                (MEMCACHED_BEHAVIOR_AUTO_EJECT_HOSTS, 0),
                (MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 0),
                (MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 1),
            ]
            for (b, v) in behaviours where memcached_behavior_set(h, b, v) != MEMCACHED_SUCCESS {
                let message = String(cString: memcached_last_error_message(h))
                memcached_free(h)
                throw SinkError(sink: sink, message: "memcached: cannot set behaviour \(b.rawValue): \(message)")
            }
            for server in servers {
                guard let colon = server.lastIndex(of: ":"), let port = UInt16(server[server.index(after: colon)...]) else {
                    memcached_free(h)
                    throw SinkError(sink: sink, message: "invalid memcached server '\(server)' (expected HOST:PORT)")
                }
                var host = String(server[..<colon])
                if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                let rc = memcached_server_add(h, host, port)
                if rc != MEMCACHED_SUCCESS {
                    let message = String(cString: memcached_strerror(h, rc))
                    memcached_free(h)
                    throw SinkError(sink: sink, message: "memcached: cannot add server '\(server)': \(message)")
                }
            }
        }

        deinit { memcached_free(handle) }

        /// `set key value` with `ttl` seconds: nil once the server answered STORED.
        func set(key: [UInt8], value: ArraySlice<UInt8>, ttl: Int) -> (reason: String, retry: RetryAdvice)? {
            let rc: memcached_return_t = key.withUnsafeBufferPointer { k in
                value.withUnsafeBufferPointer { v in
                    k.withMemoryRebound(to: CChar.self) { kc in
                        v.withMemoryRebound(to: CChar.self) { vc in
                            memcached_set(handle, kc.baseAddress, kc.count, vc.baseAddress, vc.count, ttl, 0)
                        }
                    }
                }
            }
            if rc == MEMCACHED_SUCCESS { return nil }
            var message = String(cString: memcached_strerror(handle, rc)).lowercased()
            let errorNumber = memcached_last_error_errno(handle)
            if errorNumber != 0 { message += " (\(String(cString: strerror(errorNumber))))" }
            var server = ""
            var lookup = MEMCACHED_SUCCESS
            key.withUnsafeBufferPointer { k in
                k.withMemoryRebound(to: CChar.self) { kc in
                    if let instance = memcached_server_by_key(handle, kc.baseAddress, kc.count, &lookup) {
                        server = " on \(String(cString: memcached_server_name(instance))):\(memcached_server_port(instance))"
                    }
                }
            }
            let permanent = [MEMCACHED_E2BIG, MEMCACHED_BAD_KEY_PROVIDED, MEMCACHED_KEY_TOO_BIG].contains(rc)
            return ("memcached: set failed\(server): \(message)", permanent ? .permanent : .transient(after: nil))
        }
    }
}
