import Foundation
import Synchronization

/// The UDF code workers should run: a version number and an immutable copy of the UDF directory.
/// Published by the reloader once the copy compiled and passed its self-tests; each worker picks
/// it up at its next batch boundary, so every event is processed by exactly one version.
///
/// Every `Version` read from `current` pins its snapshot: while the value exists (a worker's engine,
/// a batch stamped with it), `isPinned` holds and the reloader does not prune that copy, so a worker
/// can always rebuild its engine (after a memory poisoning) from the code it runs.
final class LiveCode: Sendable {
    struct Version: Sendable, Equatable {
        var number: Int
        /// Directory the Lua engine loads modules from.
        var dir: String
        /// Keeps the snapshot from being pruned while this value (or a copy) exists.
        var pin: Pin? = nil

        init(number: Int, dir: String, pin: Pin? = nil) { self.number = number; self.dir = dir; self.pin = pin }

        static func == (a: Version, b: Version) -> Bool { a.number == b.number && a.dir == b.dir }
    }

    /// A reference to one version's snapshot; releases it when the last copy goes.
    final class Pin: Sendable {
        let number: Int
        private let counts: PinCounts

        fileprivate init(_ number: Int, _ counts: PinCounts) {
            self.number = number; self.counts = counts
            counts.lock.withLock { $0[number, default: 0] += 1 }
        }

        deinit {
            let n = number
            counts.lock.withLock { c in
                c[n, default: 1] -= 1
                if c[n] == 0 { c[n] = nil }
            }
        }
    }

    private let state: Mutex<Version>
    private let pins = PinCounts()

    init(_ initial: Version) { state = Mutex(initial) }

    /// The version to run now, pinned for as long as the returned value lives.
    var current: Version {
        state.withLock { v in
            var pinned = v
            pinned.pin = Pin(v.number, pins)
            return pinned
        }
    }

    func publish(_ v: Version) {
        var unpinned = v
        unpinned.pin = nil
        state.withLock { $0 = unpinned }
    }

    /// True while some value of version `n` read from `current` is alive.
    func isPinned(_ n: Int) -> Bool { pins.lock.withLock { $0[n] != nil } }
}

/// How many live `Version` values pin each version number (shared by the pins and their `LiveCode`).
final class PinCounts: Sendable {
    let lock = Mutex<[Int: Int]>([:])
}

/// Immutable copies of a UDF directory, one per version, under a private temporary directory.
/// Old copies are removed by `prune` once no worker runs them and no queued batch is stamped with them.
struct CodeSnapshots {
    let source: String
    let base: String

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
        // Hidden entries are skipped: editors' files, and a ConfigMap's `..data` and `..TIMESTAMP`
        // directories (its visible files are symlinks through `..data`, read as the files they point to).
        let files = (fm.enumerator(atPath: source)?.allObjects as? [String] ?? []).filter {
            $0.hasSuffix(".lua") && !$0.split(separator: "/").contains { $0.hasPrefix(".") }
        }
        for rel in files {
            let target = dest + "/" + rel
            try fm.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let data = try Data(contentsOf: URL(fileURLWithPath: source + "/" + rel))
            try data.write(to: URL(fileURLWithPath: target))
        }
        return dest
    }

    /// Removes every version's copy for which `keep` is false.
    func prune(keeping keep: (Int) -> Bool) {
        let fm = FileManager.default
        for entry in (try? fm.contentsOfDirectory(atPath: base)) ?? [] {
            guard entry.hasPrefix("v"), let n = Int(entry.dropFirst()), !keep(n) else { continue }
            try? fm.removeItem(atPath: "\(base)/\(entry)")
        }
    }

    func discard(_ n: Int) { try? FileManager.default.removeItem(atPath: "\(base)/v\(n)") }

    func removeAll() { try? FileManager.default.removeItem(atPath: base) }
}
