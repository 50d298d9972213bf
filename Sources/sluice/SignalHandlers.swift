import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT/SIGTERM ask the pipeline to stop gracefully (drain, flush, exit 0). Past the grace
/// period, or at a second SIGINT/SIGTERM, `onForce` runs (it names what is still held and exits
/// non-zero, leaving those acknowledgements unreleased). SIGHUP reloads the UDFs.
/// SIGPIPE is ignored so a closed stdout is reported as a write error instead of killing the process.
final class SignalHandlers {
    private let sources: [any DispatchSourceSignal]

    init(grace: Double, onStop: @escaping @Sendable () -> Void, onForce: @escaping @Sendable (_ why: String) -> Void,
         onReload: @escaping @Sendable () -> Void) {
        signal(SIGPIPE, SIG_IGN)
        let queue = DispatchQueue(label: "sluice-signals")
        var sources: [any DispatchSourceSignal] = []
        let counter = SignalCount()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                let n = counter.increment()
                if n > 1 { onForce("a second \(sig == SIGINT ? "SIGINT" : "SIGTERM")"); return }
                onStop()
                queue.asyncAfter(deadline: .now() + grace) { onForce("the grace period (\(Self.seconds(grace))) passed") }
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

    private static func seconds(_ s: Double) -> String { s == s.rounded() ? "\(Int(s))s" : "\(s)s" }

    deinit { for s in sources { s.cancel() } }
}

private final class SignalCount: Sendable {
    private let count = Atomic<Int>(0)
    func increment() -> Int { count.add(1, ordering: .relaxed).newValue }
}
