import Foundation

/// `sluice checkpoints` and `sluice rewind`: read and rearrange a pipeline's checkpoint directory.
public enum CheckpointListing {
    /// One line per checkpoint, oldest first: id, time, positions, UDF version, state size (an
    /// unusable one says why instead).
    public static func lines(dir: String) -> [String] {
        let store = CheckpointStore(dir: dir)
        return store.ids().map { id in
            do {
                let f = try store.load(id)
                let h = f.header
                let positions = h.sources.map(describe).joined(separator: " ")
                var line = "\(id)  \(time(h.time))  \(positions)  udf v\(h.udfVersion)"
                if !h.udfHash.isEmpty { line += " (\(h.udfHash))" }
                line += "  state \(f.stateBytes) bytes"
                if let r = h.restatement { line += "  restating \(r)" }
                return line
            } catch {
                return "\(id)  unusable: \(error)"
            }
        }
    }

    static func describe(_ s: SourceCheckpoint) -> String {
        if let f = s.file { return "\(s.name)=byte \(f.offset) (line \(f.line))" }
        if let k = s.kafka {
            return "\(s.name)=" + (k.isEmpty ? "none" : k.map { "\($0.topic)[\($0.partition)]@\($0.offset)" }.joined(separator: ","))
        }
        return "\(s.name)=\(s.events) events"
    }

    /// RFC 3339 (UTC, milliseconds).
    public static func time(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    /// Parses `--to`: a checkpoint id, or an RFC 3339 time (ms since the epoch).
    public enum Target: Equatable, Sendable {
        case id(UInt64)
        case time(Int64)

        public init?(_ text: String) {
            if let id = UInt64(text) { self = .id(id); return }
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let plain = ISO8601DateFormatter()
            guard let d = f.date(from: text) ?? plain.date(from: text) else { return nil }
            self = .time(Int64((d.timeIntervalSince1970 * 1000).rounded()))
        }
    }

    /// Makes the next start restore `target`: the checkpoints after it are set aside (renamed
    /// `*.rewound`) and a `REWIND` marker records the restatement label and how far the
    /// pipeline had got. With a time and no checkpoint at or before it: every checkpoint is set
    /// aside and Kafka sources start at the offsets for that time, with empty state.
    /// Returns what was done, in words.
    public static func rewind(dir: String, to target: Target) throws(CheckpointError) -> String {
        let store = CheckpointStore(dir: dir)
        var valid: [CheckpointFile] = []
        for id in store.ids() { if let f = try? store.load(id) { valid.append(f) } }
        let until = valid.last?.header.sources ?? []
        let chosen: CheckpointFile?
        var time: Int64? = nil
        switch target {
        case .id(let id):
            guard let f = valid.first(where: { $0.header.id == id }) else {
                throw .notFound("no usable checkpoint \(id) in \(dir) (see `sluice checkpoints`)")
            }
            chosen = f
        case .time(let t):
            chosen = valid.last { $0.header.time <= t }
            if chosen == nil { time = t }
        }
        let label = chosen.map { String($0.header.id) } ?? "time:\(time ?? 0)"
        let previous = store.readRewind()
        try store.writeRewind(CheckpointStore.RewindMarker(to: chosen?.header.id, time: time, restatement: label,
                                                            until: previous?.until ?? until))
        store.setAside(after: chosen?.header.id)
        if let chosen {
            return "the next start restores checkpoint \(chosen.header.id) (\(Self.time(chosen.header.time))); events re-emitted carry \(Restatement.header): \(label)"
        }
        return "no checkpoint at or before \(Self.time(time ?? 0)): the next start has empty state, Kafka sources start at the offsets for that time and file sources at their beginning; events carry \(Restatement.header): \(label)"
    }
}
