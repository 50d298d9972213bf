import Synchronization
import SluiceCore

/// Set after `sluice rewind`: while it has a label, events written to Kafka sinks carry the header
/// `sluice-restatement: LABEL` (the checkpoint id rewound to, or `time:MS`). It ends at the first
/// checkpoint whose source positions are all at or past those the pipeline had reached when the
/// rewind was made (`until`).
final class Restatement: Sendable {
    static let header = "sluice-restatement"
    private let state: Mutex<(label: String?, until: [SourceCheckpoint])>

    init(label: String?, until: [SourceCheckpoint]) { state = Mutex((label, until)) }

    var label: String? { state.withLock { $0.label } }

    /// The header to add, if restating.
    var headerValue: EventMeta.Header? { label.map { EventMeta.Header(name: Self.header, value: Array($0.utf8)) } }

    /// Ends the restatement if `positions` are past `until`; returns the label that ended.
    func endIfPast(_ positions: [SourceCheckpoint]) -> String? {
        state.withLock { r in
            guard let label = r.label else { return nil }
            let past = r.until.allSatisfy { u in
                guard let p = positions.first(where: { $0.name == u.name }) else { return true }
                if let uf = u.file, let pf = p.file, pf.offset < uf.offset { return false }
                if u.file == nil, u.kafka == nil, p.events < u.events { return false }
                for uk in u.kafka ?? [] {
                    guard let pk = p.kafka?.first(where: { $0.topic == uk.topic && $0.partition == uk.partition }) else { return false }
                    if pk.offset < uk.offset { return false }
                }
                return true
            }
            guard past else { return nil }
            r.label = nil
            return label
        }
    }
}
