import Testing
@testable import SluiceSpec
import SluiceCore

let specDir = "/srv/app/pipelines"

func load(_ yaml: String, env: [String: String] = [:], file: String = "p.yaml") throws(SpecErrors) -> PipelineSpec {
    try SpecLoader.load(text: yaml, file: file, directory: specDir, environment: env)
}

/// The diagnostics of a spec that must fail, as `file:line:col: message` strings.
func errors(_ yaml: String, env: [String: String] = [:], file: String = "p.yaml") -> [String] {
    do {
        _ = try load(yaml, env: env, file: file)
        return []
    } catch {
        return error.diagnostics.map(\.description)
    }
}

/// A minimal valid pipeline with `extra` appended (top-level YAML).
func minimal(_ extra: String = "") -> String {
    """
    pipeline: t
    sources:
      in: { stdin: {} }
    sinks:
      out: { from: in, stdout: {} }

    """ + extra
}
