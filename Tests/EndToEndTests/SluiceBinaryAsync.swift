import Foundation

extension SluiceBinary {
    /// Like `run`, but the blocking wait happens on a thread of its own, never on Swift
    /// Testing's cooperative pool, so `async` tests stay reliable under `--parallel`.
    static func runAsync(_ args: [String], stdin: String? = nil, cwd: URL? = nil,
                         environment: [String: String] = [:]) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Swift.Result { try run(args, stdin: stdin, cwd: cwd, environment: environment) })
            }
            thread.name = "sluice-test-wait"
            thread.start()
        }
    }
}
