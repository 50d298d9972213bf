import CMemcached
import Foundation

/// One libmemcached handle (`memcached_st`) with Sluice's behaviours and the sink's servers; freed
/// with the object. Not thread-safe: each belongs to one `MemcachedLane`.
final class MemcachedConnection {
    private let handle: UnsafeMutablePointer<memcached_st>

    /// The first connection of the process opens libmemcached (`dlopen`); if it is missing, this
    /// throws saying which package to install.
    init(sink: String, servers: [String], timeoutMs: Int64) throws(SinkError) {
        if let reason = sl_memcached_load() { throw SinkError(sink: sink, message: String(cString: reason)) }
        guard let h = sl_memcached_create(nil) else { throw SinkError(sink: sink, message: "memcached_create failed") }
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
        for (b, v) in behaviours where sl_memcached_behavior_set(h, b, v) != MEMCACHED_SUCCESS {
            let message = String(cString: sl_memcached_last_error_message(h))
            sl_memcached_free(h)
            throw SinkError(sink: sink, message: "memcached: cannot set behaviour \(b.rawValue): \(message)")
        }
        for server in servers {
            guard let colon = server.lastIndex(of: ":"), let port = UInt16(server[server.index(after: colon)...]) else {
                sl_memcached_free(h)
                throw SinkError(sink: sink, message: "invalid memcached server '\(server)' (expected HOST:PORT)")
            }
            var host = String(server[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            let rc = sl_memcached_server_add(h, host, port)
            if rc != MEMCACHED_SUCCESS {
                let message = String(cString: sl_memcached_strerror(h, rc))
                sl_memcached_free(h)
                throw SinkError(sink: sink, message: "memcached: cannot add server '\(server)': \(message)")
            }
        }
    }

    deinit { sl_memcached_free(handle) }

    /// `set key value` with `ttl` seconds: nil once the server answered STORED.
    func set(key: [UInt8], value: ArraySlice<UInt8>, ttl: Int) -> (reason: String, retry: RetryAdvice)? {
        let rc: memcached_return_t = key.withUnsafeBufferPointer { k in
            value.withUnsafeBufferPointer { v in
                k.withMemoryRebound(to: CChar.self) { kc in
                    v.withMemoryRebound(to: CChar.self) { vc in
                        sl_memcached_set(handle, kc.baseAddress, kc.count, vc.baseAddress, vc.count, ttl, 0)
                    }
                }
            }
        }
        if rc == MEMCACHED_SUCCESS { return nil }
        var message = String(cString: sl_memcached_strerror(handle, rc)).lowercased()
        let errorNumber = sl_memcached_last_error_errno(handle)
        if errorNumber != 0 { message += " (\(String(cString: strerror(errorNumber))))" }
        var server = ""
        var lookup = MEMCACHED_SUCCESS
        key.withUnsafeBufferPointer { k in
            k.withMemoryRebound(to: CChar.self) { kc in
                if let instance = sl_memcached_server_by_key(handle, kc.baseAddress, kc.count, &lookup) {
                    server = " on \(String(cString: sl_memcached_server_name(instance))):\(sl_memcached_server_port(instance))"
                }
            }
        }
        let permanent = [MEMCACHED_E2BIG, MEMCACHED_BAD_KEY_PROVIDED, MEMCACHED_KEY_TOO_BIG].contains(rc)
        return ("memcached: set failed\(server): \(message)", permanent ? .permanent : .transient(after: nil))
    }
}
