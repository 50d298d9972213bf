import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// libcurl and libmemcached are opened with dlopen when a pipeline first uses them, never linked:
/// checked on the built binary through `/proc/PID/maps` while the pipeline runs. A pipeline with
/// neither an HTTP sink or lookup nor a memcached sink maps neither library (nor what they pull in);
/// one with an HTTP sink maps libcurl only, one with a memcached sink libmemcached only.
@Suite struct HTTPAndMemcachedLibraryLoadingTests {
    /// Libraries only libcurl or libmemcached bring in (libcrypto, libssl and libstdc++ also come
    /// with librdkafka or the Swift runtime, so they prove nothing).
    static let curlOnly = ["libcurl", "libnghttp2", "libssh2", "librtmp", "libgnutls", "libp11-kit", "libldap"]
    static let memcachedOnly = ["libmemcached", "libhashkit"]

    /// The file names of the shared objects `pid` maps now (real names: `libcurl.so.4.8.0`).
    func mappedLibraries(_ pid: Int32) -> Set<String> {
        // Read to the end: String(contentsOfFile:) stops after the first page of a /proc file.
        guard let file = FileHandle(forReadingAtPath: "/proc/\(pid)/maps") else { return [] }
        defer { try? file.close() }
        let maps = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        return Set(maps.split(separator: "\n").compactMap { line in
            guard let path = line.split(separator: " ", omittingEmptySubsequences: true).last, path.hasPrefix("/"), path.contains(".so")
            else { return nil }
            return String(path.split(separator: "/").last ?? "")
        })
    }

    /// Those of `libraries` that are one of `prefixes` (`libcurl`: `libcurl.so.4.8.0`, `libcurl-gnutls.so.4`).
    func mapped(_ libraries: Set<String>, anyOf prefixes: [String]) -> [String] {
        libraries.filter { name in prefixes.contains { name.hasPrefix($0 + ".so") || name.hasPrefix($0 + "-") } }.sorted()
    }

    func startSluice(_ dir: URL, _ spec: String) throws -> ChildProcess {
        try dir.write(spec, to: "pipelines/p.yaml")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: true)
        return try ChildProcess(name: "sluice", executable: SluiceBinary.path, arguments: ["run", "pipelines/p.yaml"], cwd: dir,
                                logDir: dir.appendingPathComponent("logs"))
    }

    /// Closes stdin and expects a clean exit.
    func finish(_ child: ChildProcess) async throws {
        try child.stdin.fileHandleForWriting.close()
        let status = try await offPool { child.wait(timeout: 30) }
        #expect(status == 0, "\(child.log)")
    }

    @Test func aStdinToStdoutPipelineNeverMapsLibcurlOrLibmemcached() async throws {
        let dir = try SluiceBinary.scratch()
        let child = try startSluice(dir, """
        pipeline: plain
        sources: { s: { stdin: {} } }
        sinks: { o: { from: s, stdout: {} } }
        """)
        defer { child.kill() }
        child.stdin.fileHandleForWriting.write(Data("{\"id\":1}\n".utf8))
        // Once the event is out, every component has been built and has run.
        let through = await eventually(timeout: .seconds(30)) { child.stdoutText.contains(#"{"id":1}"#) }
        try #require(through, "the event never came out: \(child.log)")
        let libraries = mappedLibraries(child.pid)
        try #require(!mapped(libraries, anyOf: ["librdkafka"]).isEmpty, "maps not readable: \(libraries.sorted())")
        #expect(mapped(libraries, anyOf: Self.curlOnly + Self.memcachedOnly) == [], "\(libraries.sorted())")
        try await finish(child)
    }

    @Test func anHTTPSinkMapsLibcurlAndDeliversButNeverMapsLibmemcached() async throws {
        let dir = try SluiceBinary.scratch()
        let server = try HTTPSinkServer(dir: dir)
        defer { server.stop() }
        let child = try startSluice(dir, """
        pipeline: hook
        sources: { s: { stdin: {} } }
        sinks: { hook: { from: s, http: { url: '\(server.url)' } } }
        """)
        defer { child.kill() }
        child.stdin.fileHandleForWriting.write(Data("{\"id\":1}\n".utf8))
        let delivered = await eventually(timeout: .seconds(30)) { ((try? server.stats().events) ?? 0) >= 1 }
        try #require(delivered, "the server never got the event: \(child.log)")
        let libraries = mappedLibraries(child.pid)
        #expect(!mapped(libraries, anyOf: ["libcurl"]).isEmpty, "\(libraries.sorted())")
        #expect(mapped(libraries, anyOf: Self.memcachedOnly) == [], "\(libraries.sorted())")
        try await finish(child)
    }

    @Test func aMemcachedSinkMapsLibmemcachedAndSetsButNeverMapsLibcurl() async throws {
        let dir = try SluiceBinary.scratch()
        let memcached = try MemcachedProcess()
        defer { memcached.stop() }
        let child = try startSluice(dir, """
        pipeline: cache
        sources: { s: { stdin: {} } }
        sinks: { cache: { from: s, memcached: { servers: [127.0.0.1:\(memcached.port)], key: 'ev:{id}' } } }
        """)
        defer { child.kill() }
        child.stdin.fileHandleForWriting.write(Data("{\"id\":1}\n".utf8))
        let stored = await eventually(timeout: .seconds(30)) { memcached.get("ev:1") != nil }
        try #require(stored, "ev:1 was never set: \(child.log)")
        let libraries = mappedLibraries(child.pid)
        #expect(!mapped(libraries, anyOf: ["libmemcached"]).isEmpty, "\(libraries.sorted())")
        #expect(mapped(libraries, anyOf: Self.curlOnly) == [], "\(libraries.sorted())")
        try await finish(child)
    }
}
