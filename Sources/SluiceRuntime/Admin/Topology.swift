import SluiceSpec

/// The pipeline as the live page (`GET /`) and `sluice top` draw it: every component with its kind,
/// what it is, the stage that runs it, and the edges between components. Built once from the spec
/// and the plan; `TopologyReport` adds the live figures.
struct Topology: Sendable {
    enum Kind: String, Sendable {
        case source, transform, sink
        case deadLetter = "dead_letter"
    }

    /// The bounded queue a component takes its input from: when it is nearly full, the component
    /// is the one behind (Flink's backpressure colour).
    enum Queue: Sendable, Equatable {
        /// Sources read from the outside world.
        case none
        /// The shared work queue of stage 0 (capacity in batches).
        case work
        /// The inboxes of stateful operator `op` (capacity in events, per worker).
        case inbox(op: Int)
        /// A sink's own queue (capacity in events); `index` into `Pipeline`'s runners plus the dead letter runner.
        case sink(index: Int)
    }

    struct Node: Sendable {
        var name: String
        var kind: Kind
        /// What it is: `file`, `filter plays.is_long_play`, `kafka plays_us`, ...
        var type: String
        /// The stage that runs it (nil for sinks, which run on threads of their own).
        var stage: Int?
        var queue: Queue
        /// Stateful transforms: index into `Plan.operators`.
        var op: Int?
        /// Sources: index into the spec's sources.
        var source: Int?
    }

    struct Edge: Sendable, Equatable {
        var from: String
        var to: String
        /// True when the edge has a routing condition (a sink's `when`).
        var when: Bool
    }

    struct Stage: Sendable {
        var index: Int
        /// `stateless`, or the stateful transform that starts the stage.
        var name: String
        var parallelism: Int
    }

    var nodes: [Node] = []
    var edges: [Edge] = []
    var stages: [Stage] = []

    init(spec: PipelineSpec, plan: Plan, workers: Int) {
        var stageOf: [Int: Int] = [:]
        for (k, members) in plan.stageNodes.enumerated() { for n in members where stageOf[n] == nil { stageOf[n] = k } }
        stages = [Stage(index: 0, name: "stateless", parallelism: workers)]
            + plan.operators.enumerated().map { Stage(index: $0 + 1, name: $1.name, parallelism: $1.parallelism) }
        for (i, s) in spec.sources.enumerated() {
            nodes.append(Node(name: s.name, kind: .source, type: ComponentLabels.source(s), stage: 0, queue: .none, source: i))
        }
        let first = spec.sources.count
        for (i, t) in spec.transforms.enumerated() {
            let stage = stageOf[first + i] ?? 0
            var op: Int?
            if case .keyed(let o) = plan.nodes[first + i].operation { op = o }
            let queue: Queue = stage == 0 ? .work : .inbox(op: stage - 1)
            nodes.append(Node(name: t.name, kind: .transform, type: ComponentLabels.transform(t), stage: stage, queue: queue, op: op))
            for f in t.from { edges.append(Edge(from: f, to: t.name, when: false)) }
        }
        for (i, s) in spec.sinks.enumerated() {
            nodes.append(Node(name: s.name, kind: .sink, type: ComponentLabels.sink(s), stage: nil, queue: .sink(index: i)))
            for f in s.from { edges.append(Edge(from: f, to: s.name, when: s.when != nil)) }
        }
        let deadLetterType = spec.deadLetter.map(ComponentLabels.sink) ?? "stderr"
        nodes.append(Node(name: Pipeline.deadLetterName, kind: .deadLetter, type: deadLetterType, stage: nil,
                          queue: .sink(index: spec.sinks.count)))
    }
}
