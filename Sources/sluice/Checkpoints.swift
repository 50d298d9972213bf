import ArgumentParser
import Foundation
import SluiceRuntime
import SluiceSpec

/// The spec's `settings.checkpoint`, or exit 2 saying it has none.
private func checkpointSettings(_ path: String) throws -> CheckpointSettings {
    let spec = try loadValidSpec(path)
    guard let c = spec.settings.checkpoint else {
        printError("\(path): the pipeline has no 'checkpoint' in 'settings'")
        throw ExitCode(2)
    }
    return c
}

struct Checkpoints: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the pipeline's checkpoints, oldest first: id, time, positions, UDF version, state size.")

    @Argument(help: "Pipeline spec (YAML).") var spec: String

    func run() throws {
        let c = try checkpointSettings(spec)
        let lines = CheckpointListing.lines(dir: c.dir)
        if lines.isEmpty { printError("no checkpoints in \(c.dir)") }
        for l in lines { print(l) }
    }
}

struct Rewind: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the next start restore a checkpoint (by id, or the latest at or before a time): restatement.")

    @Argument(help: "Pipeline spec (YAML).") var spec: String
    @Option(name: .long, help: "A checkpoint id, or an RFC 3339 time such as 2026-11-30T12:00:00Z.") var to: String

    func run() throws {
        let c = try checkpointSettings(spec)
        guard let target = CheckpointListing.Target(to) else {
            printError("--to \(to): expected a checkpoint id or an RFC 3339 time (e.g. 2026-11-30T12:00:00Z)")
            throw ExitCode(2)
        }
        do {
            print("sluice: rewind: " + (try CheckpointListing.rewind(dir: c.dir, to: target)))
        } catch {
            printError("sluice: rewind: \(error)")
            throw ExitCode(1)
        }
    }
}
