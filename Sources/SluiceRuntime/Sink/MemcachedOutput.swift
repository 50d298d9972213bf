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
            lanes.append(MemcachedLane(try MemcachedConnection(sink: sink, servers: spec.servers, timeoutMs: spec.timeout),
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
}
