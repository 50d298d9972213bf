import Dispatch
import Foundation
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
/// flight however many events ask for it (their calls all wait for that one answer), retries with
/// backoff, and a timeout per attempt. Requests run on the lookup's own I/O thread (`HTTPLookupIO`).
final class HTTPLookup: Sendable {
    let name: String
    let spec: HTTPLookupSpec
    typealias Waiter = @Sendable (LuaResumeAnswer) -> Void

    private struct State {
        var cache: LookupCache<HTTPLookupResult>
        var waiting: [String: [Waiter]] = [:]
        var queue: [String] = []
    }
    private let state: Mutex<State>
    private let multi: CurlMulti
    private let stopped = Atomic<Bool>(false)
    private let log: @Sendable (String, String) -> Void

    let requests = Atomic<Int>(0)
    let cacheHits = Atomic<Int>(0)
    let coalesced = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
    let retries = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)

    init(name: String, spec: HTTPLookupSpec, log: @escaping @Sendable (String, String) -> Void) throws(PipelineError) {
        self.name = name
        self.spec = spec
        self.log = log
        state = Mutex(State(cache: LookupCache(capacity: spec.cacheSize)))
        guard let multi = CurlMulti() else {
            throw PipelineError(message: "lookup '\(name)': libcurl could not create a multi handle", kind: .input)
        }
        self.multi = multi
    }

    /// The answer now (a cached row or 404), or nil: then `then` is called with it later, on the I/O thread.
    func lookup(_ key: String, then: @escaping Waiter) -> LuaLookupAnswer? {
        enum Step { case cached(HTTPLookupResult), joined, queued }
        let now = HTTPLookupIO.now()
        let step: Step = state.withLock { s in
            if let cached = s.cache.get(key, now: now) { return .cached(cached) }
            if s.waiting[key] != nil {
                s.waiting[key]!.append(then)
                return .joined
            }
            s.waiting[key] = [then]
            s.queue.append(key)
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
            multi.wake()
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

    private func answer(_ r: HTTPLookupResult) -> LuaLookupAnswer {
        switch r {
        case .row(let b): return .row(b)
        case .notFound: return .miss
        case .failed(let m): return spec.onError == .none ? .miss : .failed(m)
        }
    }

    private func resumeAnswer(_ r: HTTPLookupResult) -> LuaResumeAnswer {
        switch r {
        case .row(let b): return .row(b)
        case .notFound: return .none
        case .failed(let m): return spec.onError == .none ? .none : .failed(m)
        }
    }

    // MARK: I/O thread side

    /// Keys queued for a request.
    func takeQueued() -> [String] {
        state.withLock { s in
            let q = s.queue
            s.queue.removeAll(keepingCapacity: true)
            return q
        }
    }

    /// A key's final result: cached (rows and 404s), then handed to everyone waiting for it.
    func finish(_ key: String, _ result: HTTPLookupResult) {
        let now = HTTPLookupIO.now()
        let waiters: [Waiter] = state.withLock { s in
            switch result {
            case .row: s.cache.put(key, result, expires: now + Double(spec.ttlMs) / 1000)
            case .notFound: if spec.negativeTtlMs > 0 { s.cache.put(key, result, expires: now + Double(spec.negativeTtlMs) / 1000) }
            case .failed: break
            }
            return s.waiting.removeValue(forKey: key) ?? []
        }
        if case .failed = result { failures.add(1, ordering: .relaxed) }
        let a = resumeAnswer(result)
        for w in waiters { w(a) }
    }

    /// Starts the I/O thread; it ends after `stop()` once nothing is queued or in flight.
    func start(_ group: DispatchGroup) {
        startThread("sluice-lookup-\(name)", group) { [self] in
            let io = HTTPLookupIO(lookup: self, multi: multi, log: log)
            io.run(stopped: { self.stopped.load(ordering: .acquiring) })
        }
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        multi.wake()
    }

    var cachedEntries: Int { state.withLock { $0.cache.count } }
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
