import CSluiceJSON

/// A run of consecutive declarative steps (`filter: { match }` and `project`) fused into one
/// pass over an event's bytes: validation and every path lookup happen together, then the
/// matches are evaluated and the last projection is written. This is the W1 fast path.
///
/// Paths after a projection refer to its output; they are rewritten at init to paths of the
/// original event (`project {os: client.os}` then `match {os: ios}` looks at `client.os`), so
/// the result is the same as running the steps one by one.
public struct DeclarativeChain: Sendable {
    public enum Step: Sendable {
        case match(MatchSpec)
        case project([ProjectField])
    }

    public enum Outcome: Sendable, Equatable {
        /// The event passed every match; its output was appended.
        case kept
        /// A match did not hold; nothing was appended.
        case dropped
        /// The event is not a valid JSON object (only when validating); nothing was appended.
        case invalid(JSONSyntaxError)
    }

    /// Everything compiled, behind one reference so that copying the chain (or capturing it in
    /// a closure on the hot path) costs one retain.
    final class Plan: Sendable {
        let paths: JSONPathSet
        /// Every match step's clauses as one conjunction (matches do not change the event).
        let match: CompiledMatch
        let hasMatch: Bool
        /// The last projection (none: the event passes through unchanged).
        let projection: CompiledProjection
        let hasProjection: Bool

        init(paths: JSONPathSet, match: CompiledMatch?, projection: CompiledProjection?) {
            self.paths = paths
            self.match = match ?? CompiledMatch(MatchSpec(clauses: []))
            self.hasMatch = match != nil
            self.projection = projection ?? CompiledProjection([])
            self.hasProjection = projection != nil
        }

        @inline(__always)
        func finish(_ values: UnsafeBufferPointer<sj_value>, _ event: UnsafeRawBufferPointer,
                    _ out: inout [UInt8]) -> Outcome {
            if hasMatch && !match.holds(values, event) { return .dropped }
            if hasProjection {
                projection.write(values, event, into: &out)
            } else {
                out.append(contentsOf: event)
            }
            return .kept
        }
    }

    let plan: Plan

    public init(_ steps: [Step]) {
        // 1. Rewrite every path to a path of the original event (nil = can never be present).
        var mapping: [String: [String]?]? = nil  // output name -> original path, after a projection
        func resolve(_ path: [String]) -> [String]? {
            guard let mapping else { return path }
            guard let first = path.first, let target = mapping[first], let target else { return nil }
            return target + path.dropFirst()
        }
        var resolvedSteps: [(Step, [[String]?])] = []
        var allClauses: [MatchClause] = []
        var clausePaths: [[String]?] = []
        for step in steps {
            switch step {
            case .match(let spec):
                allClauses += spec.clauses
                clausePaths += spec.clauses.map { resolve($0.path) }
            case .project(let fields):
                let resolved = fields.map { resolve($0.path) }
                resolvedSteps.append((step, resolved))
                var next: [String: [String]?] = [:]
                for (f, r) in zip(fields, resolved) { next[f.output] = .some(r) }  // last one wins
                mapping = next
            }
        }
        // 2. One path set for everything.
        let all = clausePaths.compactMap { $0 } + resolvedSteps.flatMap { $0.1.compactMap { $0 } }
        let set = JSONPathSet(all)
        var slotOf: [[String]: Int] = [:]
        for (p, s) in zip(all, set.slots) { slotOf[p] = s }
        // 3. Compile the steps against the shared slots.
        func slots(_ resolved: [[String]?]) -> ([String]) -> Int {
            var i = 0
            return { _ in
                defer { i += 1 }
                guard let p = resolved[i] else { return -1 }
                return slotOf[p] ?? -1
            }
        }
        var projection: CompiledProjection? = nil
        for (step, resolved) in resolvedSteps {
            if case .project(let fields) = step {
                projection = CompiledProjection(fields, paths: nil, slot: slots(resolved))
            }
        }
        let match = allClauses.isEmpty ? nil
            : CompiledMatch(MatchSpec(clauses: allClauses), paths: nil, slot: slots(clausePaths))
        self.plan = Plan(paths: set, match: match, projection: projection)
    }

    /// Runs the chain on one event. With `validate` (the default) the bytes are checked as a
    /// strict JSON object in the same pass; without it they must already have been validated.
    public func run(_ event: UnsafeRawBufferPointer, into out: inout [UInt8], validate: Bool = true,
                    maxDepth: Int = JSONValidator.defaultMaxDepth) -> Outcome {
        let plan = self.plan
        if validate {
            let r = plan.paths.validateAndFind(event, requireObject: true, maxDepth: maxDepth) { values in
                plan.finish(values, event, &out)
            }
            switch r {
            case .success(let o): return o
            case .failure(let e): return .invalid(e)
            }
        }
        return plan.paths.find(in: event) { values in plan.finish(values, event, &out) }
    }

    public func run(_ event: [UInt8], into out: inout [UInt8], validate: Bool = true) -> Outcome {
        event.withUnsafeBytes { run($0, into: &out, validate: validate) }
    }
}
