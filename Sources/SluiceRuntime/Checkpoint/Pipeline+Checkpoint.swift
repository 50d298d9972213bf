import Foundation
import SluiceCore
import SluiceSpec

/// What a start with checkpoints on resumes from: the latest valid checkpoint (a rewind set the
/// newer ones aside), and the rewind marker's restatement label and time.
struct RestorePoint: Sendable {
    var file: CheckpointFile?
    var marker: CheckpointStore.RewindMarker?

    static func load(_ settings: CheckpointSettings, log: @escaping @Sendable (String, String) -> Void) -> RestorePoint {
        let store = CheckpointStore(dir: settings.dir)
        let marker = store.readRewind()
        let began = ContinuousClock.now
        let file = store.latestValid { log("error", $0) }
        if let file {
            let ms = CheckpointCoordinator.millis(ContinuousClock.now - began)
            log("info", "restoring checkpoint \(file.header.id) of \(settings.dir) (taken \(CheckpointListing.time(file.header.time)), "
                + "udf version \(file.header.udfVersion), \(file.stateBytes) state bytes read and verified in \(String(format: "%.0f", ms)) ms)")
        } else if !store.ids().isEmpty {
            log("error", "no checkpoint in \(settings.dir) is usable: starting with empty state from the sources' start")
        }
        return RestorePoint(file: file, marker: marker)
    }

    func position(of source: String) -> SourceCheckpoint? {
        file?.header.sources.first { $0.name == source }
    }
}

extension Pipeline {
    /// The checkpoint kind of a source.
    static func checkpointKind(_ kind: SourceSpec.Kind) -> (kind: String, path: String?) {
        switch kind {
        case .file(let path, _): return ("file", path)
        case .kafka: return ("kafka", nil)
        case .stdin: return ("stdin", nil)
        case .generate: return ("generate", nil)
        }
    }

    /// Wires the coordinator to this run: barriers enter each source's order through its sequencer.
    func startCheckpoints(_ coordinator: CheckpointCoordinator, outlets: [SourceOutlet], sequencers: [Sequencer],
                          stages: KeyedStages, group: DispatchGroup) {
        let specs = spec.sources
        let plan = plan
        let changelog = changelog
        let inject: @Sendable (UInt64, Acknowledgement) -> Void = { id, next in
            changelog?.begin(id)
            for (s, outlet) in outlets.enumerated() {
                let k = Self.checkpointKind(specs[s].kind)
                let (seq, position) = outlet.barrier(name: specs[s].name, kind: k.kind, path: k.path, next: next)
                sequencers[s].complete(seq) {
                    stages.publishBarrier(id, from: Channel(stage: 0, lane: s), feeding: plan.sourceOperators[s])
                    coordinator.sourcePassed(id, source: s, position: position)
                }
            }
        }
        let udfDir = spec.udfs.dir
        let usesLua = !plan.luaCode.isEmpty
        let lookups = lua.lookups
        let reloader = reloader
        let sources = sources
        coordinator.wire(CheckpointCoordinator.Wiring(
            injectBarriers: inject,
            headerInfo: { (reloader?.live.current.number ?? 1, usesLua ? Self.udfHash(udfDir) : "", lookups?.versions ?? [:]) },
            onComplete: { header in
                func commit(excluding excluded: Set<Int32>) {
                    for (s, source) in sources.enumerated() {
                        guard var p = header.sources.first(where: { $0.name == specs[s].name }) else { continue }
                        p.kafka = p.kafka?.filter { !excluded.contains($0.partition) }
                        source.checkpointed(p)
                    }
                }
                // With changelogs: the changed keys are written (and delivered) before the offsets go.
                if let changelog { changelog.publish(header.id) { commit(excluding: $0) } } else { commit(excluding: []) }
            }))
        startThread("sluice-checkpoint", group) { coordinator.run() }
    }

    /// FNV-1a 64 over the names and contents of the `.lua` files under `dir`, in name order.
    static func udfHash(_ dir: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) { for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 } }
        let files = (FileManager.default.enumerator(atPath: dir)?.compactMap { $0 as? String } ?? [])
            .filter { $0.hasSuffix(".lua") }.sorted()
        for f in files {
            mix(f.utf8)
            mix(FileManager.default.contents(atPath: dir + "/" + f) ?? Data())
        }
        return String(h, radix: 16)
    }
}

extension LookupRegistry {
    /// Each table's version for a checkpoint: its row count and the size and modification time of
    /// the file it was loaded from.
    var versions: [String: String] {
        var out: [String: String] = [:]
        for t in ordered {
            var st = stat()
            let file = stat(t.file.path, &st) == 0 ? "\(st.st_size) bytes, mtime \(st.st_mtim.tv_sec)" : "unreadable"
            out[t.spec.name] = "\(t.snapshot.rows.count) rows (\(file))"
        }
        return out
    }
}
