import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// scripts/geo_service.py running as its own process on a free port, controlled over HTTP.
final class GeoService: @unchecked Sendable {
    let process = Process()
    private let output = Pipe()
    private(set) var url = ""
    private var stopped = false

    init(latencyMs: Double = 0) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", SluiceBinary.root.appendingPathComponent("scripts/geo_service.py").path,
                             "--port", "0", "--latency-ms", String(latencyMs)]
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let fd = output.fileHandleForReading.fileDescriptor
        var line: [UInt8] = []
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let deadline = Date(timeIntervalSinceNow: 10)
        while Date() < deadline, !line.contains(10) {
            guard poll(&pfd, 1, 200) > 0 else { continue }
            var b: UInt8 = 0
            if read(fd, &b, 1) != 1 { break }
            line.append(b)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text.hasPrefix("listening on ") else {
            process.terminate()
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "geo service did not start: '\(text)'"])
        }
        url = String(text.dropFirst("listening on ".count))
    }

    /// Starts the service off Swift Testing's cooperative pool (the start waits for its first line).
    static func start(latencyMs: Double = 0) async throws -> GeoService {
        try await offPool { try GeoService(latencyMs: latencyMs) }
    }

    deinit { stop() }

    func stop() {
        guard !stopped else { return }
        stopped = true
        if process.isRunning { killAndReap(process) }
    }

    /// `POST /control` with a JSON body, e.g. `{"mode":"503"}`.
    func control(_ json: String) throws { _ = try request("POST", "/control", body: json) }
    func resetStats() throws { _ = try request("POST", "/stats/reset", body: "{}") }

    struct Stats {
        var requests: Int
        var keys: [String: Int]
        var starts: [Double]
        var maxInFlight: Int
    }

    func stats() throws -> Stats {
        let data = try request("GET", "/stats", body: nil)
        let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
        return Stats(requests: o["requests"] as? Int ?? -1, keys: o["keys"] as? [String: Int] ?? [:],
                     starts: (o["starts"] as? [Double] ?? []).sorted(), maxInFlight: o["max_in_flight"] as? Int ?? -1)
    }

    /// One request with the `curl` command-line tool.
    private func request(_ method: String, _ path: String, body: String?) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var args = ["curl", "-sf", "-X", method, url + path]
        if let body { args += ["-H", "Content-Type: application/json", "--data", body] }
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let status = waitForExit(p, timeout: 60)
        guard status == 0 else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "curl \(method) \(path): exit \(status.map(String.init) ?? "timed out")"])
        }
        return data
    }
}
