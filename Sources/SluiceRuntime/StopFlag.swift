import Synchronization

/// Set once when the pipeline is asked to stop (SIGINT/SIGTERM); sources poll it between reads.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}
