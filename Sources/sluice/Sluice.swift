import ArgumentParser
import Foundation
import SluiceRuntime
import SluiceSpec

@main
struct Sluice: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Run YAML stream pipelines with Lua UDFs, declarative filters and isolated sinks.",
        version: SluiceVersion.current,
        subcommands: [Run.self, Validate.self, Test.self, Graph.self, Checkpoints.self, Rewind.self, Tap.self, Top.self, Dev.self]
    )

    /// Parses and runs like ArgumentParser's default, but with the README's exit codes:
    /// argument errors exit 2 (ArgumentParser's default is 64, EX_USAGE).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                printError(fullMessage(for: error))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Loads and fully validates a spec (YAML, graph, Lua), printing every problem as `file:line:col: message`.
/// Exit code 2 for an invalid spec.
func loadValidSpec(_ path: String) throws -> PipelineSpec {
    guard FileManager.default.fileExists(atPath: path) else {
        printError("\(path): no such file")
        throw ExitCode(2)
    }
    let spec: PipelineSpec
    do {
        spec = try SpecLoader.load(path: path, environment: ProcessInfo.processInfo.environment)
    } catch {
        // Lua references in the parts that did load are checked too: every problem in one run.
        var all = error.diagnostics
        if let partial = error.partial {
            let known = Set(all.map(\.location))
            all += LuaCheck.problems(in: partial).filter { !known.contains($0.location) }
            all.sort { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
        }
        for d in all { printError(d.description) }
        printError("\(path): \(all.count) problem(s) found")
        throw ExitCode(2)
    }
    let lua = LuaCheck.problems(in: spec)
    if !lua.isEmpty {
        for p in lua { printError(p.description) }
        printError("\(path): \(lua.count) problem(s) found")
        throw ExitCode(2)
    }
    return spec
}

/// Prints a message on stderr as it is (one JSON object with `SLUICE_LOG_FORMAT=json`).
func printError(_ message: String, level: String = "error") {
    LogLine.write(level: level, message: message, prefixed: false)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a pipeline until its sources end or SIGINT/SIGTERM.")

    @Argument(help: "Pipeline spec (YAML).") var spec: String
    @Flag(name: .shortAndLong, help: "Do not print the summary at exit.") var quiet = false

    func run() throws {
        let spec = try loadValidSpec(spec)
        let pipeline: Pipeline
        do { pipeline = try Pipeline(spec: spec) }
        catch {
            printError(error.description)
            throw ExitCode(error.kind == .input ? 1 : 2)
        }
        let signals = SignalHandlers(grace: Double(spec.settings.grace) / 1000, onStop: { pipeline.stop() }, onForce: { why in
            // Still running: name what is held, exit 1 without acknowledging it (Kafka offsets stay uncommitted).
            let held = pipeline.heldEvents().map { "\($0.name) (\($0.events) queued)" }
            printError("sluice: \(why) before the pipeline drained; exiting 1 without acknowledging what is still held"
                       + (held.isEmpty ? "" : ": " + held.joined(separator: ", ")))
            _exit(1)
        }, onReload: { pipeline.reload() })
        let report = pipeline.run()
        withExtendedLifetime(signals) {}
        if !quiet { printError(RunSummary.line(pipeline: spec, report: report), level: report.errors.isEmpty ? "info" : "error") }
        if !report.errors.isEmpty { throw ExitCode(1) }
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a spec: YAML, keys, graph, and every referenced Lua function. Exit 2 if invalid; warnings (joins that may not be co-partitioned, Kafka-fed state without checkpoints) exit 0.")

    @Argument(help: "Pipeline spec (YAML).") var specs: [String]

    func run() throws {
        var failed = false
        for path in specs {
            do {
                let spec = try loadValidSpec(path)
                // Warnings do not fail validation (exit 0): the spec cannot tell partition counts or producers' keys.
                for w in CoPartitioning.warnings(in: spec) + ChangelogRequirements.warnings(in: spec) { printError(w.description) }
                print("\(path): ok")
            } catch {
                failed = true
            }
        }
        if failed { throw ExitCode(2) }
    }
}

struct Test: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the spec's tests: block. Exit 1 if any test fails.")

    @Argument(help: "Pipeline spec (YAML).") var spec: String

    func run() throws {
        let spec = try loadValidSpec(spec)
        if spec.tests.isEmpty {
            print("\(spec.file): no tests")
            return
        }
        let outcomes = SpecTestRunner.run(spec)
        for o in outcomes {
            print("\(o.passed ? "PASS" : "FAIL")  \(o.name)")
            for f in o.failures { print("      \(o.location): \(f)") }
        }
        let failed = outcomes.filter { !$0.passed }.count
        print("\(outcomes.count - failed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode(1) }
    }
}

struct Graph: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the pipeline's DAG as a Mermaid flowchart.")

    @Argument(help: "Pipeline spec (YAML).") var spec: String

    func run() throws {
        print(MermaidGraph.render(try loadValidSpec(spec)), terminator: "")
    }
}
