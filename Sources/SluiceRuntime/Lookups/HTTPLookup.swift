import Dispatch
import Foundation
import SluiceHTTP
import SluiceLua
import SluiceSpec
import Synchronization

/// What an HTTP lookup resolved a key to.
enum HTTPLookupResult: Sendable {
    case row([UInt8])
    case notFound
    case failed(String)
}

/// An `http` lookup: an LRU cache in front of a rate-limited service, with one request per key in
/// flight however many events ask for it (their calls all wait for that one answer), at most
/// `concurrency` requests in flight, at most `rate` started per window, retries with backoff and
/// a timeout per attempt. Requests go out on the lookup's own `HTTPClient` (one I/O thread).
final class HTTPLookup: Sendable {
    let name: String
    let spec: HTTPLookupSpec
    typealias Waiter = @Sendable (LuaResumeAnswer) -> Void

    private struct State {
        var cache: LookupCache<HTTPLookupResult>
        var waiting: [String: [Waiter]] = [:]
        /// Keys to request (with the attempt), in order; `head` is the next one.
        var queue: [(key: String, attempt: Int)] = []
        var head = 0
        var delayed: [(due: Double, key: String, attempt: Int)] = []
        var rate: RateWindow?
        var inFlight = 0
        /// When the pump timer fires next (nil: none set).
        var timer: Double?
        var stopped = false
    }
    private let state: Mutex<State>
    private let client: HTTPClient
    private let urlPrefix: String
    private let urlSuffix: String

    let requests = Atomic<Int>(0)
    let cacheHits = Atomic<Int>(0)
    let coalesced = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    let retries = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)

    init(name: String, spec: HTTPLookupSpec) throws(PipelineError) {
        self.name = name
        self.spec = spec
        state = Mutex(State(cache: LookupCache(capacity: spec.cacheSize),
                            rate: spec.rate.map { RateWindow(limit: $0.count, windowSeconds: Double($0.windowMs) / 1000) }))
        do { client = try HTTPClient(name: "lookup-\(name)") } catch {
            throw PipelineError(message: "lookup '\(name)': \(error)", kind: .input)
        }
        let url = spec.url
        let open = url.firstIndex(of: "{") ?? url.endIndex
        let close = url[open...].firstIndex(of: "}").map { url.index(after: $0) } ?? url.endIndex
        urlPrefix = String(url[..<open])
        urlSuffix = String(url[close...])
    }

    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    /// The answer now (a cached row or 404), or nil: then `then` is called with it later (on
    /// the client's I/O thread).
    func lookup(_ key: String, then: @escaping Waiter) -> LuaLookupAnswer? {
        enum Step { case cached(HTTPLookupResult), joined, queued }
        let now = Self.now()
        let step: Step = state.withLock { s in
            if let cached = s.cache.get(key, now: now) { return .cached(cached) }
            if s.waiting[key] != nil {
                s.waiting[key]!.append(then)
                return .joined
            }
            s.waiting[key] = [then]
            s.queue.append((key, 0))
            return .queued
        }
        switch step {
        case .cached(let r):
            cacheHits.add(1, ordering: .relaxed)
            return answer(r)
        case .joined:
            coalesced.add(1, ordering: .relaxed)
            return nil
        case .queued:
            pump()
            return nil
        }
    }

    /// Answers synchronously (a call that cannot suspend): waits for the request if it has to.
    func lookupNow(_ key: String) -> LuaLookupAnswer {
        let box = AnswerBox()
        if let now = lookup(key, then: { box.set($0) }) { return now }
        switch box.wait() {
        case .row(let b): return .row(b)
        case .none: return .miss
        case .failed(let m): return .failed(m)
        }
    }

    /// Stops taking work: what is still queued fails (the workers that asked have finished by now).
    func stop() {
        state.withLock { $0.stopped = true }
        client.close()
        pump()
    }

    var cachedEntries: Int { state.withLock { $0.cache.count } }

    private func answer(_ r: HTTPLookupResult) -> LuaLookupAnswer {
        switch r {
        case .row(let b): return .row(b)
        case .notFound: return .miss
        case .failed(let m): return spec.onError == .none ? .miss : .failed(m)
        }
    }

    // MARK: requests

    /// Starts what `concurrency` and `rate` allow now, and sets a timer for what must wait.
    private func pump() {
        let now = Self.now()
        var failedWhileStopped: [String] = []
        let (starts, wakeAt): ([(key: String, attempt: Int)], Double?) = state.withLock { s in
            if s.stopped {
                failedWhileStopped = s.queue[s.head...].map(\.key) + s.delayed.map(\.key)
                s.queue.removeAll(); s.head = 0; s.delayed.removeAll()
                return ([], nil)
            }
            if !s.delayed.isEmpty {
                s.delayed.sort { $0.due < $1.due }
                while let d = s.delayed.first, d.due <= now {
                    s.delayed.removeFirst()
                    s.queue.append((d.key, d.attempt))
                }
            }
            var starts: [(key: String, attempt: Int)] = []
            var wake: Double? = s.delayed.first?.due
            while s.inFlight < spec.concurrency, s.head < s.queue.count {
                if var r = s.rate {
                    let at = r.allowedAt(now)
                    if at > now { wake = min(wake ?? at, at); break }
                    r.record(now)
                    s.rate = r
                }
                starts.append(s.queue[s.head])
                s.head += 1
                s.inFlight += 1
            }
            if s.head == s.queue.count { s.queue.removeAll(keepingCapacity: true); s.head = 0 }
            if let w = wake, s.timer.map({ w < $0 }) ?? true {
                s.timer = w
                return (starts, w)
            }
            return (starts, nil)
        }
        for key in failedWhileStopped { finish(key, .failed("the pipeline is stopping")) }
        if let at = wakeAt {
            DispatchQueue.global().asyncAfter(deadline: .now() + max(0, at - now)) { [self] in
                state.withLock { s in if s.timer == at { s.timer = nil } }
                pump()
            }
        }
        for (key, attempt) in starts { send(key, attempt: attempt) }
    }

    private func send(_ key: String, attempt: Int) {
        let encoded = key.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#"))) ?? key
        let request = HTTPRequest(url: urlPrefix + encoded + urlSuffix, headers: [("Accept", "application/json")],
                                  timeoutMilliseconds: Int(spec.timeoutMs))
        requests.add(1, ordering: .relaxed)
        inFlight.add(1, ordering: .relaxed)
        client.send(request) { [self] result in
            inFlight.add(-1, ordering: .relaxed)
            settle(key, attempt: attempt, result)
            state.withLock { $0.inFlight -= 1 }
            pump()
        }
    }

    /// Maps an attempt's outcome: 2xx = the row, 404 = nil, 5xx / 429 / transport error = retry,
    /// any other status = failed at once.
    private func settle(_ key: String, attempt: Int, _ result: Result<HTTPResponse, HTTPTransportError>) {
        switch result {
        case .failure(let error):
            retry(key, attempt: attempt, "\(error)")
        case .success(let r):
            switch r.status {
            case 200..<300: finish(key, .row(r.body))
            case 404: finish(key, .notFound)
            case 429, 500...: retry(key, attempt: attempt, "HTTP \(r.status)")
            default:
                let excerpt = r.bodyExcerpt()
                finish(key, .failed("HTTP \(r.status)" + (excerpt.isEmpty ? "" : ": \(excerpt)")))
            }
        }
    }

    private func retry(_ key: String, attempt: Int, _ reason: String) {
        let stopped = state.withLock { $0.stopped }
        guard attempt < spec.retries, !stopped else {
            finish(key, .failed("\(reason) after \(attempt + 1) attempt(s)"))
            return
        }
        retries.add(1, ordering: .relaxed)
        let base = min(Double(spec.backoffMaxMs), Double(spec.backoffMinMs) * pow(2, Double(attempt)))
        let due = Self.now() + base * Double.random(in: 0.5...1.0) / 1000
        state.withLock { $0.delayed.append((due, key, attempt + 1)) }
    }

    /// A key's final result: cached (rows and 404s), then handed to everyone waiting for it.
    private func finish(_ key: String, _ result: HTTPLookupResult) {
        let now = Self.now()
        let waiters: [Waiter] = state.withLock { s in
            switch result {
            case .row: s.cache.put(key, result, expires: now + Double(spec.ttlMs) / 1000)
            case .notFound: if spec.negativeTtlMs > 0 { s.cache.put(key, result, expires: now + Double(spec.negativeTtlMs) / 1000) }
            case .failed: break
            }
            return s.waiting.removeValue(forKey: key) ?? []
        }
        if case .failed = result { failures.add(1, ordering: .relaxed) }
        let a: LuaResumeAnswer
        switch result {
        case .row(let b): a = .row(b)
        case .notFound: a = .none
        case .failed(let m): a = spec.onError == .none ? .none : .failed(m)
        }
        for w in waiters { w(a) }
    }
}

/// A one-shot answer a blocked caller waits for.
private final class AnswerBox: Sendable {
    private let value = Mutex<LuaResumeAnswer?>(nil)
    private let ready = DispatchSemaphore(value: 0)
    func set(_ a: LuaResumeAnswer) { value.withLock { $0 = a }; ready.signal() }
    func wait() -> LuaResumeAnswer {
        ready.wait()
        return value.withLock { $0 } ?? .none
    }
}
