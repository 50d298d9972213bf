import Foundation
import Testing
import Synchronization
@testable import SluiceRuntime

/// `retry:` delays (a pure function) and the retrying output over a scripted downstream.
@Suite struct RetryTests {
    @Test func backoffDoublesFromMinUpToMaxWithJitterInTheUpperHalf() {
        let b = Backoff(maxRetries: 10, min: .milliseconds(100), max: .seconds(2))
        #expect((1...7).map { b.delay(retry: $0, unit: 1) } == [100, 200, 400, 800, 1600, 2000, 2000].map { .milliseconds($0) })
        #expect((1...7).map { b.delay(retry: $0, unit: 0) } == [100, 100, 200, 400, 800, 1000, 1000].map { .milliseconds($0) })
        #expect(b.delay(retry: 3, unit: 0.5) == .milliseconds(300))
        #expect(b.delay(retry: 500, unit: 1) == .seconds(2), "no overflow for late retries")
    }

    @Test func retryAfterIsHonouredButNeverBelowMinNorAboveTheCeiling() {
        let b = Backoff(maxRetries: 3, min: .milliseconds(100), max: .seconds(1))
        #expect(b.delay(retry: 1, retryAfter: .seconds(3), unit: 0) == .seconds(3))
        #expect(b.delay(retry: 1, retryAfter: .zero, unit: 0) == .milliseconds(100))
        #expect(b.delay(retry: 1, retryAfter: .seconds(86_400), unit: 0) == .seconds(300))
    }

    /// Fails events by a script: each call takes the next entry (index in *that* call's batch -> advice).
    final class Scripted: SinkOutput {
        let script: Mutex<[[Int: RetryAdvice]]>
        let calls = Mutex<[[String]]>([])
        init(_ script: [[Int: RetryAdvice]]) { self.script = Mutex(script) }
        func send(_ batch: SinkBatch, done: @escaping @Sendable ([DeliveryFailure]) -> Void) {
            let payloads = batch.payloads.map { String(decoding: $0, as: UTF8.self) }
            calls.withLock { $0.append(payloads) }
            let step = script.withLock { $0.isEmpty ? [:] : $0.removeFirst() }
            done(step.keys.sorted().map { DeliveryFailure(index: $0, reason: "failed \(payloads[$0])", retry: step[$0]!) })
        }
        func close() {}
    }

    func batch(_ n: Int) -> SinkBatch {
        var b = SinkBatch()
        for i in 0..<n { b.append(Array("e\(i)".utf8)) }
        return b
    }

    func run(_ output: RetryingOutput, _ b: SinkBatch) -> [DeliveryFailure] {
        let result = Mutex<[DeliveryFailure]?>(nil)
        output.send(b) { f in result.withLock { $0 = f } }
        return result.withLock { $0 } ?? []
    }

    @Test func onlyTransientFailuresAreSentAgainAndPermanentOnesAreReportedAtOnce() {
        let inner = Scripted([[1: .transient(after: nil), 2: .permanent, 3: .transient(after: nil)], [1: .transient(after: nil)], [:]])
        let out = RetryingOutput(inner, backoff: Backoff(maxRetries: 5, min: .milliseconds(1), max: .milliseconds(2)))
        let failures = run(out, batch(4))
        #expect(failures.map(\.index) == [2] && failures[0].retry == .permanent)
        #expect(inner.calls.withLock { $0 } == [["e0", "e1", "e2", "e3"], ["e1", "e3"], ["e3"]])
        #expect(out.retries.load(ordering: .relaxed) == 2)
    }

    @Test func exhaustedRetriesReportTheLastErrorWithTheOriginalIndices() {
        let always: [Int: RetryAdvice] = [0: .transient(after: nil), 1: .transient(after: nil)]
        let inner = Scripted([[1: .transient(after: nil), 3: .transient(after: nil)], always, always])
        let out = RetryingOutput(inner, backoff: Backoff(maxRetries: 2, min: .milliseconds(1), max: .milliseconds(1)))
        let failures = run(out, batch(4))
        #expect(failures.map(\.index) == [1, 3])
        #expect(failures.map(\.reason) == ["failed e1 (after 2 retries)", "failed e3 (after 2 retries)"])
        #expect(inner.calls.withLock { $0.count } == 3)
    }

    @Test func theDeadLetterPolicyGivesUpAtOnceOnceBroken() {
        let fail: [Int: RetryAdvice] = [0: .transient(after: nil)]
        let inner = Scripted(Array(repeating: fail, count: 10))
        let out = RetryingOutput(inner, backoff: Backoff(maxRetries: 2, min: .milliseconds(1), max: .milliseconds(1)), giveUpAfterExhaustion: true)
        #expect(run(out, batch(1)).count == 1)
        #expect(inner.calls.withLock { $0.count } == 3)
        #expect(run(out, batch(1)).count == 1)
        #expect(inner.calls.withLock { $0.count } == 4, "a broken output gets one attempt per batch")
    }
}
