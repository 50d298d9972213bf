import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT/SIGTERM ask the pipeline to stop gracefully (drain, flush, exit 0); a second SIGINT exits at once.
/// SIGHUP reloads the UDFs.
/// SIGPIPE is ignored so a closed stdout is reported as a write error instead of killing the process.
final class SignalHandlers {
    private let sources: [any DispatchSourceSignal]

    init(onStop: @escaping @Sendable () -> Void, onReload: @escaping @Sendable () -> Void) {
        signal(SIGPIPE, SIG_IGN)
        let queue = DispatchQueue(label: "sluice-signals")
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            let counter = SignalCount()
            source.setEventHandler {
                if counter.increment() > 1 && sig == SIGINT { _exit(130) }
                onStop()
            }
            source.resume()
            sources.append(source)
        }
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        hup.setEventHandler { onReload() }
        hup.resume()
        sources.append(hup)
        self.sources = sources
    }

    deinit { for s in sources { s.cancel() } }
}

private final class SignalCount: Sendable {
    private let count = Atomic<Int>(0)
    func increment() -> Int { count.add(1, ordering: .relaxed).newValue }
}
