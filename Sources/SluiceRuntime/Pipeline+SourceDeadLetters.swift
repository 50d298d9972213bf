import SluiceCore

extension Pipeline {
    /// Events a source rejected itself (a generator call that failed or returned a non-object):
    /// straight to the dead letter sink, counted against the source. They carry no acknowledgement.
    func sourceDeadLetters(_ dead: [DeadLetter]) {
        guard !dead.isEmpty else { return }
        var batch = SinkBatch()
        for d in dead {
            batch.append(d.encoded())
            stats.add(d.component) { $0.deadLettered += 1 }
        }
        _ = deadLetterRunner.enqueue(batch)
        stats.add(Self.deadLetterName) { $0.received += dead.count }
    }
}
