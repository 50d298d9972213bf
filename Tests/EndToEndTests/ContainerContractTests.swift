import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The container image's contract, without a container engine: the binary as PID 1 in new PID and
/// mount namespaces (`unshare --pid --fork --mount-proc --mount`), as an unprivileged uid, on a
/// read-only root with one writable volume, logging JSON lines (`SLUICE_LOG_FORMAT=json`). SIGTERM
/// drains and exits 0 within `settings.grace`; logs go to stderr only; nothing is written outside
/// the volume. Needs root (for the namespaces), as CI has.
@Suite struct ContainerContractTests {
    static let available = getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")

    /// What runs inside the namespaces: a private read-only view of `/` with only `$VOL` writable,
    /// then `sluice run` as uid/gid 65534 with an empty environment, exec'd so that it is PID 1.
    static let entrypoint = """
    set -e
    mount --make-rprivate /
    mount --bind "$VOL" "$VOL"
    mount -o remount,bind,ro /
    exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \\
      env -i PATH=/usr/bin:/bin TMPDIR="$VOL/tmp" SLUICE_LOG_FORMAT=json SLUICE_ADMIN_PORT="$PORT" OUT="$VOL/out.jsonl" \\
      "$BIN" run "$SPEC"

    """

    /// The process whose parent is `parent`.
    static func child(of parent: Int32) -> Int32? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, Int32(fields[1]) == parent { return pid }
        }
        return nil
    }

    static func status(_ pid: Int32, _ key: String) -> String? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return s.split(separator: "\n").first { $0.hasPrefix(key + ":") }.map { String($0.dropFirst(key.count + 1)).trimmingCharacters(in: .whitespaces) }
    }

    /// Runs a command to completion; its exit status.
    static func shell(_ args: [String], environment: [String: String] = [:]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return waitForExit(p, timeout: 120) ?? -1
    }

    /// The Dockerfile's HEALTHCHECK command (its exec form).
    static func healthcheck() throws -> [String] {
        let text = try String(contentsOf: SluiceBinary.root.appendingPathComponent("Dockerfile"), encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("HEALTHCHECK ") })
        let json = try #require(line.range(of: "CMD ").map { line[$0.upperBound...] })
        return try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String])
    }

    @Test(.enabled(if: available, "needs root and util-linux unshare/setpriv"))
    func asPidOneUnprivilegedOnAReadOnlyRootSigtermDrainsAndExitsZero() async throws {
        let dir = try SluiceBinary.scratch()
        let vol = dir.appendingPathComponent("vol")
        try FileManager.default.createDirectory(at: vol, withIntermediateDirectories: true)
        #expect(chown(vol.path, 65534, 65534) == 0)
        try dir.write(OpsPipeline.udf, to: "udfs/gen.lua")
        try dir.write("""
        pipeline: container
        udfs: { reload: watch }
        sources: { plays: { generate: { rate: 2000/s, udf: gen.play } } }
        transforms:
          long: { from: plays, filter: { match: { duration_ms: { gt: 60000 } } } }
          tagged: { from: long, map: { udf: gen.tag } }
        sinks: { all: { from: tagged, file: { path: "${OUT}" } } }
        dead_letter: { file: { path: "${OUT}.dead" } }
        settings: { grace: 5s, admin: { listen: "127.0.0.1:${SLUICE_ADMIN_PORT:-9464}" } }
        """, to: "pipelines/p.yaml")
        try dir.write(Self.entrypoint, to: "entrypoint.sh")

        let p = Process()
        let stdout = Pipe(), stderr = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        p.arguments = ["--pid", "--fork", "--mount-proc", "--mount", "/bin/bash", dir.appendingPathComponent("entrypoint.sh").path]
        p.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "VOL": vol.path, "BIN": SluiceBinary.path,
                         "SPEC": dir.appendingPathComponent("pipelines/p.yaml").path, "PORT": "0"]
        p.standardOutput = stdout
        p.standardError = stderr
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let errText = LineBuffer(), outBytes = LineBuffer()
        errText.read(stderr.fileHandleForReading)
        outBytes.read(stdout.fileHandleForReading)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }

        // Up (the admin port it chose is in its first log line) and answering; events flowing into the volume.
        let port = try #require(try await offPool { errText.waitForAdminPort() }, "\(errText.text)")
        #expect(try await offPool { AdminEndpointTests.request("GET", "/health", port: port)?.0 } == 200)
        #expect(await eventually(timeout: .seconds(60)) { vol.lines("out.jsonl").count > 200 })

        // It is PID 1 of its namespace, runs as 65534, and is the sluice binary itself (no shell in between).
        let pid = try #require(Self.child(of: p.processIdentifier))
        #expect(Self.status(pid, "NSpid")?.split(separator: "\t").last == "1", "\(Self.status(pid, "NSpid") ?? "")")
        #expect(Self.status(pid, "Uid")?.split(separator: "\t").map(String.init) == ["65534", "65534", "65534", "65534"])
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) == URL(fileURLWithPath: SluiceBinary.path).resolvingSymlinksInPath().path)
        // In its mount namespace the root is read-only and only the volume is writable.
        #expect(try Self.shell(["nsenter", "-t", String(pid), "-m", "touch", dir.appendingPathComponent("probe").path]) != 0)
        #expect(try Self.shell(["nsenter", "-t", String(pid), "-m", "touch", vol.appendingPathComponent("probe").path]) == 0)
        try? FileManager.default.removeItem(at: vol.appendingPathComponent("probe"))
        // The UDF snapshots live in the volume (TMPDIR).
        let snapshots = (try? FileManager.default.contentsOfDirectory(atPath: vol.appendingPathComponent("tmp").path)) ?? []
        #expect(snapshots.count == 1 && snapshots[0].hasPrefix("sluice-udfs-1-"), "\(snapshots)")
        // The image's HEALTHCHECK command passes against it.
        let check = try Self.healthcheck()
        #expect(try await offPool { try Self.shell(check, environment: ["SLUICE_ADMIN_PORT": String(port)]) } == 0, "\(check)")

        let started = ContinuousClock.now
        #expect(kill(pid, SIGTERM) == 0)
        let status = try await offPool { waitForExit(p, timeout: 120) }
        let took = ContinuousClock.now - started
        // Exit 0 is the binary's own word that it drained within settings.grace (past it, it exits 1).
        // The wall time seen from here also holds the scheduling delays of a loaded machine.
        #expect(status == 0, "\(errText.text)")
        #expect(took < .seconds(30), "drained in \(took)")

        // Logs: stderr only, one JSON object per line; stdout stays empty.
        let logs = try await offPool { errText.waitForEnd(); return errText.text.split(separator: "\n").map(String.init) }
        try await offPool { outBytes.waitForEnd() }
        #expect(outBytes.text.isEmpty, "stdout: \(outBytes.text)")
        #expect(!logs.isEmpty)
        for line in logs {
            let o = OpsPipeline.object(line)
            #expect(o?["level"] is String && o?["message"] is String && o?["time"] is String, "\(line)")
        }
        let summary = try #require(logs.compactMap(OpsPipeline.object).last?["message"] as? String)
        let written = vol.lines("out.jsonl").count
        #expect(summary.hasPrefix("container: read "), "\(summary)")
        #expect(summary.contains("wrote all=\(written);"), "\(summary) vs \(written) lines")
        #expect(summary.contains("dead-lettered \(vol.lines("out.jsonl.dead").count)"), "\(summary)")
        // Nothing but the output (and the emptied TMPDIR) in the volume.
        let left = Set((try? FileManager.default.contentsOfDirectory(atPath: vol.path)) ?? [])
        #expect(left == ["out.jsonl", "out.jsonl.dead", "tmp"], "\(left)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: vol.appendingPathComponent("tmp").path)) ?? []).isEmpty)
    }
}

/// Collects what a pipe delivers, as it comes, until it closes.
final class LineBuffer: @unchecked Sendable {
    private let lock = NSCondition()
    private var data = Data()
    private var ended = false

    func read(_ handle: FileHandle) {
        let t = Thread { [self] in
            while true {
                let chunk = handle.availableData
                lock.lock()
                if chunk.isEmpty { ended = true } else { data.append(chunk) }
                lock.broadcast()
                lock.unlock()
                if chunk.isEmpty { return }
            }
        }
        t.start()
    }

    /// Waits (up to 60 s) for `admin endpoint on http://127.0.0.1:PORT` in the text; the port.
    func waitForAdminPort() -> Int? {
        let deadline = Date().addingTimeInterval(60)
        lock.lock(); defer { lock.unlock() }
        while true {
            let text = String(decoding: data, as: UTF8.self)
            if let m = text.firstMatch(of: /admin endpoint on http:\/\/[0-9.]+:(\d+)/) { return Int(m.1) }
            if ended || !lock.wait(until: deadline) { return nil }
        }
    }

    func waitForEnd() {
        lock.lock(); defer { lock.unlock() }
        while !ended { lock.wait() }
    }

    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
