import CCurl
import Foundation

/// One request in flight: its easy handle, the buffers curl reads and writes, and the completion.
/// Lives on the I/O thread of its `HTTPClient` from `start` to `complete`/`finish`.
final class Transfer {
    let easy: UnsafeMutableRawPointer
    private let completion: HTTPClient.Completion
    private let body: UnsafeMutableBufferPointer<UInt8>
    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let maxBodyBytes: Int
    private var responseBody: [UInt8] = []
    private var responseHeaders: [(name: String, value: String)] = []
    private var finished = false
    /// curl's message for a failed transfer.
    private let errorBuffer = UnsafeMutableBufferPointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)

    private init(easy: UnsafeMutableRawPointer, request: HTTPRequest, completion: @escaping HTTPClient.Completion) {
        self.easy = easy
        self.completion = completion
        self.maxBodyBytes = request.maxBodyBytes
        body = .allocate(capacity: max(1, request.body.count))
        _ = body.initialize(from: request.body)
    }

    deinit {
        sl_curl_easy_cleanup(easy)
        sl_curl_slist_free_all(headerList)
        body.deallocate()
        errorBuffer.deallocate()
    }

    /// A configured easy handle for `request`, or why not.
    static func start(_ request: HTTPRequest, completion: @escaping HTTPClient.Completion) -> Result<Transfer, HTTPTransportError> {
        guard let easy = sl_curl_easy_init() else { return .failure(HTTPTransportError(message: "curl_easy_init failed")) }
        let t = Transfer(easy: easy, request: request, completion: completion)
        if let error = t.configure(request) { return .failure(error) }
        return .success(t)
    }

    private func configure(_ r: HTTPRequest) -> HTTPTransportError? {
        var failed: String?
        func check(_ code: CURLcode, _ what: String) {
            if code != CURLE_OK && failed == nil { failed = "\(what): \(String(cString: sl_curl_easy_strerror(code)))" }
        }
        check(sl_curl_setopt_string(easy, CURLOPT_URL, r.url), "url '\(r.url)'")
        check(sl_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1), "nosignal")
        check(sl_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, r.timeoutMilliseconds), "timeout")
        check(sl_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, r.timeoutMilliseconds), "connect timeout")
        check(sl_curl_setopt_string(easy, CURLOPT_PROXY, ""), "proxy")   // never an environment proxy
        check(sl_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0), "redirects")
        errorBuffer.initialize(repeating: 0)
        check(sl_curl_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer.baseAddress), "error buffer")
        if r.method == "POST" || !r.body.isEmpty {
            check(sl_curl_setopt_long(easy, CURLOPT_POST, 1), "post")
            check(sl_curl_setopt_pointer(easy, CURLOPT_POSTFIELDS, body.baseAddress), "body")
            check(sl_curl_setopt_long(easy, CURLOPT_POSTFIELDSIZE, r.body.count), "body size")
        }
        if r.method != "GET" && r.method != "POST" {
            check(sl_curl_setopt_string(easy, CURLOPT_CUSTOMREQUEST, r.method), "method")
        }
        for h in r.headers + [(name: "Expect", value: "")] {
            let line = h.value.isEmpty ? "\(h.name):" : "\(h.name): \(h.value)"
            guard let list = sl_curl_slist_append(headerList, line) else { failed = failed ?? "header list: out of memory"; break }
            headerList = list
        }
        check(sl_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList), "headers")
        let me = Unmanaged.passUnretained(self).toOpaque()
        check(sl_curl_setopt_write(easy, CURLOPT_WRITEFUNCTION, { data, size, count, user in
            guard let data, let user else { return 0 }
            let t = Unmanaged<Transfer>.fromOpaque(user).takeUnretainedValue()
            let n = size * count
            let room = max(0, t.maxBodyBytes - t.responseBody.count)
            if room > 0 {
                data.withMemoryRebound(to: UInt8.self, capacity: n) { t.responseBody.append(contentsOf: UnsafeBufferPointer(start: $0, count: min(n, room))) }
            }
            return n
        }), "write function")
        check(sl_curl_setopt_pointer(easy, CURLOPT_WRITEDATA, me), "write data")
        check(sl_curl_setopt_write(easy, CURLOPT_HEADERFUNCTION, { data, size, count, user in
            guard let data, let user else { return 0 }
            let t = Unmanaged<Transfer>.fromOpaque(user).takeUnretainedValue()
            let n = size * count
            let line = data.withMemoryRebound(to: UInt8.self, capacity: n) { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) }
            if line.hasPrefix("HTTP/") {
                t.responseHeaders = []   // a new response (after 100 Continue, say)
            } else if let colon = line.firstIndex(of: ":") {
                let name = String(line[..<colon])
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                if t.responseHeaders.count < 100 { t.responseHeaders.append((name, value)) }
            }
            return n
        }), "header function")
        check(sl_curl_setopt_pointer(easy, CURLOPT_HEADERDATA, me), "header data")
        return failed.map { HTTPTransportError(message: $0) }
    }

    /// The transfer ended with `code`: reports the response or the error.
    func complete(_ code: CURLcode) {
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer.baseAddress!)
            finish(.failure(HTTPTransportError(message: detail.isEmpty ? String(cString: sl_curl_easy_strerror(code)) : detail)))
            return
        }
        var status = 0
        _ = sl_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        finish(.success(HTTPResponse(status: status, headers: responseHeaders, body: responseBody)))
    }

    /// Calls the completion (once).
    func finish(_ result: Result<HTTPResponse, HTTPTransportError>) {
        if finished { return }
        finished = true
        completion(result)
    }
}
