/// A source whose events go through Lua filters and maps one after another, each the only thing
/// downstream of the one before, into one sink without `when`: the most common Lua pipeline.
/// The worker runs it in a loop over the batch (`Worker.processLine`) instead of the general walk.
struct LuaLine {
    struct Step {
        let node: Int
        /// `LuaRef.slot` of the filter's or the map's function.
        let slot: Int
        let isMap: Bool
    }

    let steps: [Step]
    let sink: Int

    /// The line starting at `source`, or nil when the plan there is anything else (a fan-out, a
    /// declarative or stateful node, a flat_map, a `when`, a sink that is not JSON).
    init?(_ plan: Plan, from source: Int) {
        var steps: [Step] = []
        var node = source
        while true {
            let edges = plan.nodes[node].downstream
            guard edges.count == 1 else { return nil }
            switch edges[0] {
            case .sink(let sink, nil):
                guard !steps.isEmpty, plan.sinks[sink].format == .json else { return nil }
                self.steps = steps
                self.sink = sink
                return
            case .node(let child):
                switch plan.nodes[child].operation {
                case .filter(.lua(let code)): steps.append(Step(node: child, slot: code.slot, isMap: false))
                case .map(let code): steps.append(Step(node: child, slot: code.slot, isMap: true))
                default: return nil
                }
                node = child
            default:
                return nil
            }
        }
    }
}
