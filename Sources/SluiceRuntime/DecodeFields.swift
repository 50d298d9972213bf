import SluiceLua

/// Which fields each place that decodes an event into Lua must put in its table. An event is
/// decoded once, by the first Lua function on its way that needs a table, and that table then
/// serves every Lua function after it until a map makes a new one (filters pass it on; sinks,
/// declarative stages and exchanges use the original bytes). So a decode holds the union of the
/// fields those functions read (`LuaEngine.fieldsRead(by:)`), or everything if one of them may
/// use more. nil = decode everything.
struct DecodeFields {
    /// By node: for a Lua filter's or map's own decode.
    private var atNode: [LuaFieldSet?]
    /// By function slot: for a sink's `when` test (its table is dropped after the test).
    private var forSlot: [LuaFieldSet?]

    /// The fields a decode for Lua filter or map `node` needs.
    func at(_ node: Int) -> LuaFieldSet? { node < atNode.count ? atNode[node] : nil }

    /// The fields a decode for a sink's `when` test needs.
    func forTest(_ condition: Condition) -> LuaFieldSet? {
        guard case .lua(let ref) = condition, ref.slot < forSlot.count else { return nil }
        return forSlot[ref.slot]
    }

    /// All nil: every decode is whole.
    init(nodes: Int, slots: Int) {
        atNode = Array(repeating: nil, count: nodes)
        forSlot = Array(repeating: nil, count: slots)
    }

    /// `read(slot)`: the fields function `slot` reads, nil if it may use more.
    init(plan: Plan, read: (Int) -> [[String]]?) {
        var memo: [Int: [[String]]?] = [:]
        func union(_ a: [[String]]?, _ b: [[String]]?) -> [[String]]? {
            guard let a, let b else { return nil }
            return a + b
        }
        /// What the table reaching the edges of `node` must hold.
        func downstream(_ node: Int) -> [[String]]? {
            var all: [[String]]? = []
            for edge in plan.nodes[node].downstream {
                switch edge {
                case .node(let child): all = union(all, needs(child))
                case .sink(_, when: .lua(let ref)?): all = union(all, read(ref.slot))
                case .sink, .keyed: break
                }
            }
            return all
        }
        /// What a table decoded for `node` (or handed to it) must hold.
        func needs(_ node: Int) -> [[String]]? {
            if let known = memo[node] { return known }
            let result: [[String]]?
            switch plan.nodes[node].operation {
            case .filter(.lua(let ref)): result = union(read(ref.slot), downstream(node))
            case .filter(.match), .source: result = downstream(node)
            case .map(let ref), .flatMap(let ref): result = read(ref.slot)
            case .declarative, .keyed: result = []
            }
            memo[node] = result
            return result
        }
        atNode = plan.nodes.indices.map { needs($0).flatMap(LuaFieldSet.init) }
        forSlot = plan.luaCode.indices.map { read($0).flatMap(LuaFieldSet.init) }
    }
}
