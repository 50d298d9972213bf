import Dispatch
import SluiceLua
import Synchronization

/// Answers to one worker's suspended lookups, posted by the lookups' I/O threads and taken by the
/// worker when it has nothing else to do in its batch.
final class LookupInbox: Sendable {
    private let answers = Mutex<[(Int64, LuaResumeAnswer)]>([])
    private let signal = DispatchSemaphore(value: 0)

    func post(_ token: Int64, _ answer: LuaResumeAnswer) {
        answers.withLock { $0.append((token, answer)) }
        signal.signal()
    }

    /// Waits for at least one answer (or a stale wake-up) and takes everything posted.
    func wait() -> [(Int64, LuaResumeAnswer)] {
        signal.wait()
        return answers.withLock { a in
            let taken = a
            a.removeAll(keepingCapacity: true)
            return taken
        }
    }
}

/// One worker's view of the lookups: file tables answer at once; HTTP lookups answer from their
/// cache, or suspend the call and post the answer to the worker's inbox later.
final class WorkerLookups: LuaLookupProvider {
    let registry: LookupRegistry
    let inbox: LookupInbox
    private let tokens = Atomic<Int64>(0)

    init(registry: LookupRegistry, inbox: LookupInbox) { self.registry = registry; self.inbox = inbox }

    func lookupRow(table: String, key: String, canSuspend: Bool) -> LuaLookupAnswer {
        guard let http = registry.http[table] else { return registry.lookupRow(table: table, key: key, canSuspend: false) }
        guard canSuspend else { return http.lookupNow(key) }
        let token = tokens.add(1, ordering: .relaxed).newValue
        let inbox = inbox
        if let now = http.lookup(key, then: { inbox.post(token, $0) }) { return now }
        return .pending(token)
    }
}
