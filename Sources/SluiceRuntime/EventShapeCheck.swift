import SluiceLua

/// Events on a JSON stream are objects. A map, flat_map, `ctx.emit` or generator that produces
/// a string, an array or a scalar has its input dead-lettered with the reason (text streams may
/// carry strings, so this applies to JSON streams only).
enum EventShapeCheck {
    /// Why `outputs` are not all objects, naming the first offender, or nil when they are.
    static func problem(_ outputs: [LuaEventHandle], engine: LuaEngine, operation: Plan.Operation) -> String? {
        let what: String
        switch operation {
        case .flatMap: what = "flat_map must return a list of events (objects)"
        default: what = "map must return an event (an object) or nil"
        }
        return problem(outputs, engine: engine, what: what)
    }

    /// Why `outputs` are not all objects, or nil. `what` states the rule ("generate must return ...").
    static func problem(_ outputs: [LuaEventHandle], engine: LuaEngine, what: String) -> String? {
        for (i, o) in outputs.enumerated() {
            let shape = engine.shape(o)
            if shape == .object { continue }
            let position = outputs.count > 1 ? " (output \(i + 1) of \(outputs.count), counting ctx.emit)" : ""
            return "\(what), got \(shape.phrase)\(position)"
        }
        return nil
    }
}
