import CCurl
import Foundation
import SluiceSpec

/// A libcurl multi handle. Only `wake()` (`curl_multi_wakeup`, which libcurl documents as callable
/// from any thread) is used off the lookup's I/O thread; everything else happens on that thread.
final class CurlMulti: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    private static let global: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    init?() {
        guard Self.global, let m = curl_multi_init() else { return nil }
        handle = m
    }

    func wake() { curl_multi_wakeup(handle) }

    deinit { curl_multi_cleanup(handle) }
}

/// One request in flight: the key, which attempt this is, and the body read so far.
private final class Transfer {
    let key: String
    let attempt: Int
    let easy: UnsafeMutableRawPointer
    var body: [UInt8] = []
    var tooLarge = false
    init(key: String, attempt: Int, easy: UnsafeMutableRawPointer) { self.key = key; self.attempt = attempt; self.easy = easy }
}

/// Larger responses are failures (a lookup row is one event's worth of JSON).
private let maxBody = 1 << 20

private let writeBody: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { ptr, size, n, ud in
    guard let ud else { return 0 }
    let t = Unmanaged<Transfer>.fromOpaque(ud).takeUnretainedValue()
    let count = size * n
    if t.body.count + count > maxBody { t.tooLarge = true; return 0 }
    if let ptr { t.body.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: count)) }
    return count
}

/// The I/O thread of one HTTP lookup: starts queued requests within `concurrency` and `rate`,
/// drives them with libcurl's multi interface, retries 5xx / 429 / connection failures with
/// exponential backoff and jitter, and hands each key's final result back to the lookup.
/// Confined to the thread that runs it.
final class HTTPLookupIO {
    private let lookup: HTTPLookup
    private let spec: HTTPLookupSpec
    private let multi: CurlMulti
    private let log: @Sendable (String, String) -> Void
    private var ready: [(key: String, attempt: Int)] = []
    private var readyHead = 0
    private var delayed: [(due: Double, key: String, attempt: Int)] = []
    private var transfers: [UnsafeMutableRawPointer: Transfer] = [:]
    private var rate: RateWindow?
    private let urlPrefix: String
    private let urlSuffix: String
    private var headers: UnsafeMutablePointer<curl_slist>?

    init(lookup: HTTPLookup, multi: CurlMulti, log: @escaping @Sendable (String, String) -> Void) {
        self.lookup = lookup
        self.spec = lookup.spec
        self.multi = multi
        self.log = log
        let spec = lookup.spec
        rate = spec.rate.map { RateWindow(limit: $0.count, windowSeconds: Double($0.windowMs) / 1000) }
        let url = spec.url
        let open = url.firstIndex(of: "{") ?? url.endIndex
        let close = url[open...].firstIndex(of: "}").map { url.index(after: $0) } ?? url.endIndex
        urlPrefix = String(url[..<open])
        urlSuffix = String(url[close...])
        headers = curl_slist_append(nil, "Accept: application/json")
    }

    deinit {
        for (easy, t) in transfers {
            curl_multi_remove_handle(multi.handle, easy)
            curl_easy_cleanup(easy)
            Unmanaged.passUnretained(t).release()
        }
        curl_slist_free_all(headers)
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    func run(stopped: () -> Bool) {
        while true {
            for key in lookup.takeQueued() { ready.append((key, 0)) }
            let t = Self.now()
            if !delayed.isEmpty {
                delayed.sort { $0.due < $1.due }
                while let d = delayed.first, d.due <= t {
                    delayed.removeFirst()
                    ready.append((d.key, d.attempt))
                }
            }
            startReady(now: t)
            if stopped() && transfers.isEmpty && readyHead == ready.count && delayed.isEmpty { break }
            var waitMs = 100.0
            if let d = delayed.first { waitMs = min(waitMs, (d.due - t) * 1000) }
            if readyHead < ready.count, transfers.count < spec.concurrency, let r = rate {
                waitMs = min(waitMs, (r.allowedAt(t) - t) * 1000)
            }
            curl_multi_poll(multi.handle, nil, 0, Int32(max(1, min(100, waitMs.rounded(.up)))), nil)
            var running: Int32 = 0
            curl_multi_perform(multi.handle, &running)
            var left: Int32 = 0
            while let msg = curl_multi_info_read(multi.handle, &left) {
                guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
                complete(easy, msg.pointee.data.result)
            }
        }
    }

    private func startReady(now t: Double) {
        while transfers.count < spec.concurrency, readyHead < ready.count {
            if var r = rate {
                if r.allowedAt(t) > t { break }
                r.record(t)
                rate = r
            }
            let next = ready[readyHead]
            readyHead += 1
            start(next.key, attempt: next.attempt)
        }
        if readyHead == ready.count { ready.removeAll(keepingCapacity: true); readyHead = 0 }
    }

    private func start(_ key: String, attempt: Int) {
        guard let easy = curl_easy_init() else {
            lookup.finish(key, .failed("libcurl could not create a request"))
            return
        }
        let encoded = key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? key
        let t = Transfer(key: key, attempt: attempt, easy: easy)
        let ud = Unmanaged.passRetained(t).toOpaque()
        sl_curl_setopt_string(easy, CURLOPT_URL, urlPrefix + encoded + urlSuffix)
        sl_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        sl_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(spec.timeoutMs))
        sl_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(spec.timeoutMs))
        sl_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, headers)
        sl_curl_setopt_string(easy, CURLOPT_USERAGENT, "sluice")
        sl_curl_setopt_write(easy, CURLOPT_WRITEFUNCTION, writeBody)
        sl_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, ud)
        transfers[easy] = t
        lookup.requests.add(1, ordering: .relaxed)
        lookup.inFlight.add(1, ordering: .relaxed)
        curl_multi_add_handle(multi.handle, easy)
    }

    private func complete(_ easy: UnsafeMutableRawPointer, _ result: CURLcode) {
        guard let t = transfers.removeValue(forKey: easy) else { return }
        curl_multi_remove_handle(multi.handle, easy)
        var code = 0
        sl_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
        curl_easy_cleanup(easy)
        Unmanaged.passUnretained(t).release()
        lookup.inFlight.add(-1, ordering: .relaxed)
        if result != CURLE_OK {
            if t.tooLarge { return lookup.finish(t.key, .failed("the response is larger than \(maxBody) bytes")) }
            return retry(t, String(cString: curl_easy_strerror(result)))
        }
        switch code {
        case 200..<300: lookup.finish(t.key, .row(t.body))
        case 404: lookup.finish(t.key, .notFound)
        case 429, 500...: retry(t, "HTTP \(code)")
        default:
            let excerpt = String(decoding: t.body.prefix(200), as: UTF8.self)
            lookup.finish(t.key, .failed("HTTP \(code)" + (excerpt.isEmpty ? "" : ": \(excerpt)")))
        }
    }

    private func retry(_ t: Transfer, _ reason: String) {
        guard t.attempt < spec.retries else {
            lookup.finish(t.key, .failed("\(reason) after \(t.attempt + 1) attempt(s)"))
            return
        }
        lookup.retries.add(1, ordering: .relaxed)
        let base = min(Double(spec.backoffMaxMs), Double(spec.backoffMinMs) * pow(2, Double(t.attempt)))
        let delay = base * Double.random(in: 0.5...1.0) / 1000
        delayed.append((Self.now() + delay, t.key, t.attempt + 1))
    }
}
