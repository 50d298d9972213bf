import SluiceCore
import SluiceSpec

/// One upstream lane of a keyed stage: a source (stage 0, lane = source index) or one worker of
/// an earlier keyed stage. Each channel has its own watermark; an operator's is their minimum.
struct Channel: Hashable, Sendable, CustomStringConvertible {
    var stage: Int
    var lane: Int
    var description: String { "\(stage).\(lane)" }
}

/// A stateful transform in the plan: its inputs (key templates), the Lua function it calls, and
/// the stage it starts. Filled in by `Plan.wireStages`.
struct KeyedOperator: Sendable {
    var name: String
    /// The plan node of the transform (its downstream edges are walked for its outputs).
    var node: Int
    var spec: TransformSpec
    var inputs: [KeyedInput]
    /// `merge` of a join or `reduce` of an aggregate.
    var udf: LuaRef?
    var parallelism: Int
    /// Every channel whose watermark this operator waits for.
    var channels: [Channel] = []

    var stage: Int { index + 1 }
    var index = 0
}

extension Plan {
    /// Computes which stages run each node, the channels of every operator, which operators each
    /// source feeds, and the order stages must be closed in.
    mutating func wireStages() {
        for i in operators.indices { operators[i].index = i }
        // Stage 0: nodes reachable from each source without crossing a keyed edge.
        var sourceReach: [Set<Int>] = []
        for s in sourceNodes {
            var seen: Set<Int> = [s]
            var stack = [s]
            while let n = stack.popLast() {
                for case .node(let c) in nodes[n].downstream where seen.insert(c).inserted { stack.append(c) }
            }
            sourceReach.append(seen)
        }
        // Keyed stage k: the operator's node and what follows it without crossing a keyed edge.
        var stageReach: [Set<Int>] = []
        for op in operators {
            var seen: Set<Int> = [op.node]
            var stack = [op.node]
            while let n = stack.popLast() {
                for case .node(let c) in nodes[n].downstream where seen.insert(c).inserted { stack.append(c) }
            }
            stageReach.append(seen)
        }
        stageNodes = [Array(sourceReach.reduce(into: Set<Int>()) { $0.formUnion($1) }).sorted()] + stageReach.map { Array($0).sorted() }
        sourceOperators = Array(repeating: [], count: sourceNodes.count)
        stageOperators = Array(repeating: [], count: operators.count)
        for o in operators.indices {
            var channels: [Channel] = []
            for (s, reach) in sourceReach.enumerated() where reach.contains(where: { feeds($0, o) }) {
                channels.append(Channel(stage: 0, lane: s))
                sourceOperators[s].append(o)
            }
            for (k, reach) in stageReach.enumerated() where reach.contains(where: { feeds($0, o) }) {
                for lane in 0..<operators[k].parallelism { channels.append(Channel(stage: k + 1, lane: lane)) }
                stageOperators[k].append(o)
            }
            operators[o].channels = channels
        }
        // Close order: an operator after every operator that feeds it (the graph is acyclic).
        var order: [Int] = []
        var done = Set<Int>()
        func visit(_ o: Int) {
            guard !done.contains(o) else { return }
            done.insert(o)
            for c in operators[o].channels where c.stage > 0 { visit(c.stage - 1) }
            order.append(o)
        }
        for o in operators.indices { visit(o) }
        operatorOrder = order
    }

    /// True if node `n` has a keyed edge into operator `o`.
    private func feeds(_ n: Int, _ o: Int) -> Bool {
        nodes[n].downstream.contains { if case .keyed(let op, _) = $0 { return op == o } else { return false } }
    }

    /// True when some transform is stateful: sources then read event time.
    var isStateful: Bool { !operators.isEmpty }
}
