import Foundation

/// Runs the built `sluice` binary as a user would, in a scratch directory.
struct SluiceBinary {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var path: String {
        if let p = ProcessInfo.processInfo.environment["SLUICE_BIN"] { return p }
        return root.appendingPathComponent(".build/debug/sluice").path
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var stdoutLines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }
    }

    /// Runs `sluice args...` to completion, feeding `stdin` if given.
    static func run(_ args: [String], stdin: String? = nil, cwd: URL? = nil, environment: [String: String] = [:]) throws -> Result {
        let p = start(args, cwd: cwd, environment: environment)
        try p.process.run()
        if let stdin { p.stdin.fileHandleForWriting.write(Data(stdin.utf8)) }
        try p.stdin.fileHandleForWriting.close()
        return p.finish()
    }

    final class Running: @unchecked Sendable {
        let process = Process()
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        private var outData = Data()
        private var errData = Data()
        private let lock = NSLock()
        private let group = DispatchGroup()

        func startReading() {
            for (pipe, isOut) in [(stdout, true), (stderr, false)] {
                group.enter()
                DispatchQueue.global().async {
                    let data = pipe.fileHandleForReading.readDataToEndOfFile()
                    self.lock.lock()
                    if isOut { self.outData = data } else { self.errData = data }
                    self.lock.unlock()
                    self.group.leave()
                }
            }
        }

        func finish() -> Result {
            let status = waitForExit(process) ?? -1
            group.wait()
            lock.lock(); defer { lock.unlock() }
            return Result(status: status,
                          stdout: String(decoding: outData, as: UTF8.self),
                          stderr: String(decoding: errData, as: UTF8.self))
        }
    }

    /// Prepares a process; the caller calls `process.run()` and drives stdin.
    static func start(_ args: [String], cwd: URL? = nil, environment: [String: String] = [:]) -> Running {
        let r = Running()
        r.process.executableURL = URL(fileURLWithPath: path)
        r.process.arguments = args
        if let cwd { r.process.currentDirectoryURL = cwd }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        r.process.environment = env
        r.process.standardInput = r.stdin
        r.process.standardOutput = r.stdout
        r.process.standardError = r.stderr
        r.startReading()
        return r
    }

    /// A fresh scratch directory with `udfs/` and `pipelines/` subdirectories.
    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-e2e-\(UUID().uuidString)")
        for sub in ["udfs", "pipelines", "data", "out"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        return dir
    }
}

extension URL {
    func write(_ text: String, to relative: String) throws {
        let url = appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func lines(_ relative: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: appendingPathComponent(relative).path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}
