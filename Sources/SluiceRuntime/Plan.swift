import SluiceCore
import SluiceSpec

/// Lua code a stage runs: a UDF from the UDF directory or an inline expression from the spec.
enum LuaCode: Sendable, Hashable {
    case udf(module: String, function: String)
    case expression(source: String, label: String)
}

/// Lua code a stage runs and its index in `Plan.luaCode`: workers keep the resolved functions in
/// an array, so a call needs no lookup by name.
struct LuaRef: Sendable {
    var code: LuaCode
    var slot: Int
}

/// A test on an event, compiled: declarative ones never enter Lua.
enum Condition: Sendable {
    case match(CompiledMatch)
    case lua(LuaRef)
}

/// The executable form of a pipeline: every source and transform is a node with its downstream edges.
/// Workers walk it depth-first per event, so stateless transforms are fused and never cross a queue.
struct Plan: Sendable {
    enum Operation: Sendable {
        case source(DataFormat)
        /// A Lua filter (declarative ones are fused into `.declarative`).
        case filter(Condition)
        case map(LuaRef)
        case flatMap(LuaRef)
        /// This declarative node and the declarative nodes that follow it in a straight line,
        /// fused into one pass over the bytes; `through` lists the fused nodes, this one first.
        case declarative(DeclarativeChain, through: [Int])
        /// A stateful transform (join, dedup, aggregate): `Plan.operators` index. Starts a stage.
        case keyed(Int)
    }

    enum Edge: Sendable {
        case node(Int)
        case sink(Int, when: Condition?)
        /// Into input `input` (0 = left / only, 1 = right) of stateful operator `op`: crosses an exchange.
        case keyed(op: Int, input: Int)
    }

    struct Node: Sendable {
        var name: String
        var operation: Operation
        var downstream: [Edge] = []
        /// True for operations that may change a Lua table they are given.
        var mutates: Bool {
            switch operation {
            case .map, .flatMap: return true
            default: return false
            }
        }
    }

    struct Sink: Sendable {
        var name: String
        var format: DataFormat
        var queue: QueueSpec
    }

    var nodes: [Node] = []
    var sinks: [Sink] = []
    /// Stateful transforms; operator `i` runs in stage `i + 1` (stage 0 is the stateless prefix).
    var operators: [KeyedOperator] = []
    /// Operators each source feeds directly (its batches carry their watermark to them).
    var sourceOperators: [[Int]] = []
    /// Operators each operator's stage feeds directly.
    var stageOperators: [[Int]] = []
    /// The nodes each stage runs: stage 0 (sources and the stateless transforms they feed), then
    /// one stage per operator (the operator and the stateless transforms fused after it).
    var stageNodes: [[Int]] = []
    /// Operators in an order where every operator comes after those that feed it.
    var operatorOrder: [Int] = []
    /// Node index of each source, in spec order.
    var sourceNodes: [Int] = []
    /// For each fused declarative chain (by its first node): the chains ending at each of its inner
    /// nodes, so `GET /tap` can sample what an inner node emits (never run otherwise).
    var fusedPrefixes: [Int: [DeclarativeChain]] = [:]
    /// Every piece of Lua the plan needs, each once; `LuaRef.slot` indexes it.
    private(set) var luaCode: [LuaCode] = []

    /// The slot of `code`, adding it on first use.
    private mutating func ref(_ code: LuaCode) -> LuaRef {
        if let slot = luaCode.firstIndex(of: code) { return LuaRef(code: code, slot: slot) }
        luaCode.append(code)
        return LuaRef(code: code, slot: luaCode.count - 1)
    }

    private mutating func condition(_ predicate: Predicate, label: String) -> Condition {
        switch predicate {
        case .match(let spec): return .match(CompiledMatch(spec))
        case .udf(let r): return .lua(ref(.udf(module: r.module, function: r.function)))
        // Labelled with the spec's own location: Lua's messages about it then point there.
        case .lua(let expression, let location): return .lua(ref(.expression(source: expression, label: "\(location)")))
        }
    }

    /// `workers`: the default parallelism of a stateful transform's stage.
    init(_ spec: PipelineSpec, workers: Int = 1) {
        var index: [String: Int] = [:]
        for source in spec.sources {
            index[source.name] = nodes.count
            sourceNodes.append(nodes.count)
            nodes.append(Node(name: source.name, operation: .source(source.format)))
        }
        for t in spec.transforms {
            index[t.name] = nodes.count
            let op: Operation
            switch t.kind {
            case .filter(.match): op = .declarative(DeclarativeChain([]), through: [])   // fused below
            case .project: op = .declarative(DeclarativeChain([]), through: [])
            case .filter(let p): op = .filter(condition(p, label: t.name))
            case .map(let r): op = .map(ref(.udf(module: r.module, function: r.function)))
            case .flatMap(let r): op = .flatMap(ref(.udf(module: r.module, function: r.function)))
            case .join(let j):
                op = .keyed(operators.count)
                operators.append(KeyedOperator(name: t.name, node: nodes.count, spec: t, inputs: [j.left, j.right],
                                               udf: j.merge.map { ref(.udf(module: $0.module, function: $0.function)) },
                                               parallelism: t.parallelism ?? workers))
            case .dedup(let d):
                op = .keyed(operators.count)
                operators.append(KeyedOperator(name: t.name, node: nodes.count, spec: t, inputs: [d.input], udf: nil,
                                               parallelism: t.parallelism ?? workers))
            case .aggregate(let a):
                op = .keyed(operators.count)
                var udf: LuaRef?
                if case .udf(let r) = a.reduce { udf = ref(.udf(module: r.module, function: r.function)) }
                operators.append(KeyedOperator(name: t.name, node: nodes.count, spec: t, inputs: [a.input], udf: udf,
                                               parallelism: t.parallelism ?? workers))
            }
            nodes.append(Node(name: t.name, operation: op))
        }
        for t in spec.transforms {
            guard let me = index[t.name] else { continue }
            if t.isStateful, case .keyed(let o) = nodes[me].operation {
                for (i, input) in operators[o].inputs.enumerated() {
                    if let u = index[input.from] { nodes[u].downstream.append(.keyed(op: o, input: i)) }
                }
                continue
            }
            for upstream in t.from { if let u = index[upstream] { nodes[u].downstream.append(.node(me)) } }
        }
        // Fuse each declarative node with the declarative nodes that follow it in a straight line.
        let first = spec.sources.count
        func step(_ t: TransformSpec) -> DeclarativeChain.Step? {
            switch t.kind {
            case .filter(.match(let m)): return .match(m)
            case .project(let fields): return .project(fields)
            default: return nil
            }
        }
        for (offset, t) in spec.transforms.enumerated() where step(t) != nil {
            var through = [first + offset]
            var steps = [step(t)!]
            while through.count < nodes.count, nodes[through.last!].downstream.count == 1,
                  case .node(let next) = nodes[through.last!].downstream[0], next >= first,
                  let s = step(spec.transforms[next - first]), !through.contains(next) {
                through.append(next)
                steps.append(s)
            }
            nodes[first + offset].operation = .declarative(DeclarativeChain(steps), through: through)
            if steps.count > 1 { fusedPrefixes[first + offset] = (1..<steps.count).map { DeclarativeChain(Array(steps[..<$0])) } }
        }
        for (i, s) in spec.sinks.enumerated() {
            sinks.append(Sink(name: s.name, format: s.format, queue: s.queue))
            let when = s.when.map { condition($0, label: "\(s.name).when") }
            for upstream in s.from { if let u = index[upstream] { nodes[u].downstream.append(.sink(i, when: when)) } }
        }
        wireStages()
    }

}
