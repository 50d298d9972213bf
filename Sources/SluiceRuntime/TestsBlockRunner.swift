import SluiceCore
import SluiceSpec

/// The outcome of one entry of a spec's `tests:` block.
public struct SpecTestOutcome: Sendable {
    public var name: String
    public var location: SourceLocation
    public var failures: [String]
    public var passed: Bool { failures.isEmpty }
}

/// Runs a spec's `tests:` block: each test feeds its events to the named sources (in memory),
/// runs the real pipeline to completion, and compares every listed sink's output exactly, in order.
/// `dead_letter` lists the original events expected to be dead-lettered.
public enum SpecTestRunner {
    public static func run(_ spec: PipelineSpec, log: @escaping @Sendable (String, String) -> Void = { _, _ in }) -> [SpecTestOutcome] {
        spec.tests.map { run($0, in: spec, log: log) }
    }

    static func run(_ test: TestCase, in spec: PipelineSpec, log: @escaping @Sendable (String, String) -> Void) -> SpecTestOutcome {
        var failures: [String] = []
        var inputs: [String: [Event]] = [:]
        for (source, values) in test.input {
            let format = spec.sources.first { $0.name == source }?.format ?? .json
            inputs[source] = values.enumerated().map { i, v in
                if format == .text, case .string(let s) = v { return Event(s, position: Int64(i + 1)) }
                return Event(bytes: v.encoded(), position: Int64(i + 1))
            }
        }
        let report: RunReport
        do {
            report = try Pipeline(spec: spec, options: RunOptions(sourceOverrides: inputs, captureSinks: true, log: log)).run()
        } catch {
            return SpecTestOutcome(name: test.name, location: test.location, failures: [error.description])
        }
        failures += report.errors
        for (sink, expected) in test.expect {
            let isDeadLetter = sink == Pipeline.deadLetterName
            guard let lines = report.captured[sink] else {
                failures.append("no sink named '\(sink)'")
                continue
            }
            let actual: [JSONValue] = lines.map { line in
                let parsed = (try? JSONValue.parse(line)) ?? .string(String(decoding: line, as: UTF8.self))
                if isDeadLetter, case .string(let raw)? = parsed["event"] {
                    return (try? JSONValue.parse(Array(raw.utf8))) ?? .string(raw)
                }
                return parsed
            }
            if actual.count != expected.count {
                failures.append("sink '\(sink)': expected \(expected.count) event(s), got \(actual.count)"
                                + (actual.isEmpty ? "" : ": " + actual.prefix(3).map(\.jsonText).joined(separator: ", ")))
                continue
            }
            for (i, (a, e)) in zip(actual, expected).enumerated() where a != e {
                failures.append("sink '\(sink)' event \(i + 1):\n      expected \(e.jsonText)\n      got      \(a.jsonText)")
            }
        }
        return SpecTestOutcome(name: test.name, location: test.location, failures: failures)
    }
}
