#if canImport(Glibc)
import Glibc
#endif
import CCurl
import Foundation
import Synchronization

/// An HTTP client over libcurl's multi interface: one I/O thread per client runs every transfer,
/// so any number of requests can be in flight without a thread each. `send` may be called from any
/// thread; its completion runs on the I/O thread (keep it short, hand work elsewhere).
///
/// Every curl handle is created, used and freed on the I/O thread only; other threads reach it
/// through a locked queue of jobs and a wake-up pipe. Connections are reused across requests.
public final class HTTPClient: Sendable {
    /// What a completion receives.
    public typealias Completion = @Sendable (Result<HTTPResponse, HTTPTransportError>) -> Void

    private struct Job: Sendable {
        var request: HTTPRequest
        var completion: Completion
    }

    private struct Shared: ~Copyable {
        var jobs: [Job] = []
        var closed = false
    }

    private let shared = Mutex(Shared())
    /// Written by `send`/`close`, polled by the I/O thread beside curl's sockets.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let finished = DispatchSemaphore(value: 0)

    /// Starts the I/O thread. `name` names it (`sluice-http-NAME`). The first client of the process
    /// opens libcurl (`dlopen`); if it is missing, this throws saying which package to install.
    public init(name: String) throws(HTTPTransportError) {
        if let reason = sl_curl_load() { throw HTTPTransportError(message: String(cString: reason)) }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0, fds.allSatisfy({ fcntl($0, F_SETFL, O_NONBLOCK) == 0 && fcntl($0, F_SETFD, FD_CLOEXEC) == 0 }) else {
            throw HTTPTransportError(message: "cannot create a wake-up pipe: \(String(cString: strerror(errno)))")
        }
        wakeRead = fds[0]; wakeWrite = fds[1]
        let loop = IOLoop(wakeFD: fds[0])
        let thread = Thread { [self] in
            loop.run(next: { self.takeJobs() })
            self.finished.signal()
        }
        thread.name = "sluice-http-\(name)"
        thread.start()
    }

    deinit {
        Glibc.close(wakeRead); Glibc.close(wakeWrite)
    }

    /// Starts `request`; `completion` is called exactly once: with the response (any status), or a
    /// transport error (connection refused, timeout, the client closed).
    public func send(_ request: HTTPRequest, completion: @escaping Completion) {
        let accepted = shared.withLock { s -> Bool in
            if s.closed { return false }
            s.jobs.append(Job(request: request, completion: completion))
            return true
        }
        guard accepted else {
            completion(.failure(HTTPTransportError(message: "HTTP client closed")))
            return
        }
        wake()
    }

    /// Sends and waits for the outcome (on the calling thread, which must not be the I/O thread).
    public func sendAndWait(_ request: HTTPRequest) -> Result<HTTPResponse, HTTPTransportError> {
        let box = Mutex<Result<HTTPResponse, HTTPTransportError>?>(nil)
        let ready = DispatchSemaphore(value: 0)
        send(request) { result in
            box.withLock { $0 = result }
            ready.signal()
        }
        ready.wait()
        return box.withLock { $0 } ?? .failure(HTTPTransportError(message: "no outcome"))
    }

    /// Fails requests not yet started and those in flight, and stops the I/O thread (waits for it).
    public func close() {
        let first = shared.withLock { s -> Bool in
            defer { s.closed = true }
            return !s.closed
        }
        wake()
        if first { finished.wait() }
    }

    /// Called by the I/O thread: the jobs submitted since last time, or nil once closed (jobs that
    /// were never started then fail here).
    private func takeJobs() -> [Job]? {
        let (jobs, closed) = shared.withLock { s in
            let jobs = s.jobs
            s.jobs = []
            return (jobs, s.closed)
        }
        guard closed else { return jobs }
        for job in jobs { job.completion(.failure(HTTPTransportError(message: "HTTP client closed"))) }
        return nil
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)   // a full pipe already means "wake up"
    }

    /// The I/O thread's state: the multi handle and the transfers in flight. Never leaves that thread.
    private final class IOLoop: Sendable {
        let wakeFD: Int32

        init(wakeFD: Int32) { self.wakeFD = wakeFD }

        func run(next: () -> [Job]?) {
            guard let multi = sl_curl_multi_init() else {
                failAll(next() ?? [], "curl_multi_init failed")
                return
            }
            var transfers: [UnsafeMutableRawPointer: Transfer] = [:]
            defer {
                for (easy, t) in transfers {
                    sl_curl_multi_remove_handle(multi, easy)
                    t.finish(.failure(HTTPTransportError(message: "HTTP client closed")))
                }
                sl_curl_multi_cleanup(multi)
            }
            while true {
                drainWakePipe()
                guard let jobs = next() else { return }
                for job in jobs {
                    switch Transfer.start(job.request, completion: job.completion) {
                    case .success(let t):
                        if sl_curl_multi_add_handle(multi, t.easy) == CURLM_OK {
                            transfers[t.easy] = t
                        } else {
                            t.finish(.failure(HTTPTransportError(message: "curl_multi_add_handle failed")))
                        }
                    case .failure(let error):
                        job.completion(.failure(error))
                    }
                }
                var running: Int32 = 0
                _ = sl_curl_multi_perform(multi, &running)
                var left: Int32 = 0
                while let msg = sl_curl_multi_info_read(multi, &left) {
                    guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
                    let code = msg.pointee.data.result
                    sl_curl_multi_remove_handle(multi, easy)
                    if let t = transfers.removeValue(forKey: easy) { t.complete(code) }
                }
                var waitFD = curl_waitfd(fd: wakeFD, events: Int16(CURL_WAIT_POLLIN), revents: 0)
                var numfds: Int32 = 0
                _ = sl_curl_multi_poll(multi, &waitFD, 1, 1000, &numfds)
            }
        }

        private func drainWakePipe() {
            var buffer = [UInt8](repeating: 0, count: 256)
            while read(wakeFD, &buffer, buffer.count) > 0 {}
        }

        private func failAll(_ jobs: [Job], _ message: String) {
            for job in jobs { job.completion(.failure(HTTPTransportError(message: message))) }
        }
    }
}
