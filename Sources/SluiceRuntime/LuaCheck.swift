import SluiceSpec
import SluiceLua

/// Compiles every piece of Lua a spec references, so `sluice validate` reports bad UDFs
/// at the spec line that names them, next to the Lua file and line of the problem.
public enum LuaCheck {
    public static func problems(in spec: PipelineSpec) -> [Diagnostic] {
        let engine: LuaEngine
        do {
            engine = try LuaEngine(udfDir: spec.udfs.dir,
                                   limits: LuaLimits(instructions: spec.udfs.instructionLimit, memoryBytes: spec.udfs.memoryLimit),
                                   log: { _, _ in })
        } catch {
            return [Diagnostic(location: SourceLocation(file: spec.file, line: 0, column: 0), message: "\(error)")]
        }
        var problems: [Diagnostic] = []
        func check(_ ref: UDFRef) {
            do { _ = try engine.function(module: ref.module, name: ref.function) }
            catch { problems.append(Diagnostic(location: ref.location, message: "cannot load UDF '\(ref)': \(error)")) }
        }
        func check(_ predicate: Predicate?, label: String) {
            switch predicate {
            case .udf(let ref)?: check(ref)
            case .lua(let expression, let location)?:
                // The same label as the plan's: the message already starts with the spec location.
                do { _ = try engine.expression(expression, label: "\(location)") }
                catch { problems.append(Diagnostic(location: location, message: "invalid Lua expression in '\(label)': \(error.message)")) }
            default: break
            }
        }
        for source in spec.sources {
            if case .generate(_, _, let udf) = source.kind { check(udf) }
        }
        for t in spec.transforms {
            switch t.kind {
            case .filter(let p): check(p, label: t.name)
            case .map(let ref), .flatMap(let ref): check(ref)
            case .project, .dedup: break
            case .join(let j): if let m = j.merge { check(m) }
            case .aggregate(let a): if case .udf(let ref) = a.reduce { check(ref) }
            }
        }
        for s in spec.sinks { check(s.when, label: "\(s.name).when") }
        return problems
    }
}
