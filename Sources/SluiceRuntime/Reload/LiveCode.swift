import Foundation
import Synchronization

/// The UDF code workers should run: a version number and an immutable copy of the UDF directory.
/// Published by the reloader once the copy compiled and passed its self-tests; each worker picks
/// it up at its next batch boundary, so every event is processed by exactly one version.
final class LiveCode: Sendable {
    struct Version: Sendable, Equatable {
        var number: Int
        /// Directory the Lua engine loads modules from.
        var dir: String
    }

    private let state: Mutex<Version>

    init(_ initial: Version) { state = Mutex(initial) }

    var current: Version { state.withLock { $0 } }

    func publish(_ v: Version) { state.withLock { $0 = v } }
}

/// Immutable copies of a UDF directory, one per version, under a private temporary directory.
/// Old copies are removed once several newer ones exist (a worker only lags by one batch).
struct CodeSnapshots {
    let source: String
    let base: String
    let keep = 8

    init(source: String) {
        self.source = source
        self.base = NSTemporaryDirectory() + "sluice-udfs-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Copies the UDF directory's `.lua` files into version `n`; returns the copy's path.
    /// The copy keeps the directory's own name so Lua messages read `udfs/x.lua:LINE: ...`.
    func take(_ n: Int) throws -> String {
        let fm = FileManager.default
        let name = URL(fileURLWithPath: source).lastPathComponent
        let dest = "\(base)/v\(n)/\(name)"
        try fm.createDirectory(atPath: dest, withIntermediateDirectories: true)
        let files = (fm.enumerator(atPath: source)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".lua") }
        for rel in files {
            let target = dest + "/" + rel
            try fm.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let data = try Data(contentsOf: URL(fileURLWithPath: source + "/" + rel))
            try data.write(to: URL(fileURLWithPath: target))
        }
        if n > keep { try? fm.removeItem(atPath: "\(base)/v\(n - keep)") }
        return dest
    }

    func discard(_ n: Int) { try? FileManager.default.removeItem(atPath: "\(base)/v\(n)") }

    func removeAll() { try? FileManager.default.removeItem(atPath: base) }
}
