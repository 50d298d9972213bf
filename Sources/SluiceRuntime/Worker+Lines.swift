import SluiceCore
import SluiceLua

/// The worker's loops for the two commonest shapes of a source's plan: a fused declarative chain
/// into one sink (`processDirect`), and Lua filters and maps in a line into one sink
/// (`processLine`, see `LuaLine`). Both count and dead-letter exactly as the general walk does.
extension Worker {
    /// The sink a fused chain's kept events go to when that is all that follows the chain (one
    /// sink, no `when`), so they can be written straight into its batch; nil otherwise.
    func directSink(after through: [Int]) -> Int? {
        guard let last = through.last, plan.nodes[last].downstream.count == 1,
              case .sink(let sink, nil) = plan.nodes[last].downstream[0] else { return nil }
        return sink
    }

    /// A source's batch into a fused declarative chain that feeds one sink: each kept event's output
    /// is written straight into the sink's batch and the counters are added once per batch. An
    /// event that needs more (too large, a tap waiting, no Lua engine) takes `processEvent`.
    func processDirect(_ batch: Batch, chain: DeclarativeChain, through: [Int], sink: Int, timed: Bool) {
        var out = sinkOut[sink]
        sinkOut[sink] = SinkBatch()
        var entered = 0, kept = 0
        let noEngine = needsLua && engine == nil
        batch.events.withUnsafeBufferPointer { events in
            for index in events.indices {   // by index: no copy of each event
                if events[index].bytes.count > maxEventBytes || TapPoints.anyWaiting || noEngine {
                    swap(&out, &sinkOut[sink])
                    processEvent(events[index], at: index, of: batch, timed: timed, decodesFirst: false)
                    swap(&out, &sinkOut[sink])
                    continue
                }
                entered += 1
                switch events[index].bytes.withUnsafeBytes({ chain.run($0, into: &out.data, validate: true) }) {
                case .kept:
                    kept += 1
                    out.endWritten(meta: events[index].meta)
                case .dropped:
                    break
                case .invalid(let error):
                    currentIndex = index
                    deadLetter(component: plan.nodes[currentSource].name, reason: "invalid JSON: \(error)", detail: nil,
                               event: events[index])
                }
            }
        }
        sinkOut[sink] = out
        // As `processEvent` and `runChain` count them, event by event.
        received[currentSource] += entered
        emitted[currentSource] += entered
        received[through[0]] += entered
        for n in through { emitted[n] += kept }
        for n in through.dropFirst() { received[n] += kept }
        sinkReceived[sink] += kept
    }

    /// A source's batch along a `LuaLine`: each event is decoded once, tested and mapped step by
    /// step and its result encoded straight into the sink's batch, counting, dead-lettering and
    /// releasing as the general walk does. An event that needs more (too large, a tap waiting, a
    /// map with other than one result) goes on through `processEvent` or `walk`; after a poisoned
    /// engine is rebuilt the rest of the batch does.
    func processLine(_ batch: Batch, _ line: LuaLine, timed: Bool) {
        var general = false
        batch.events.withUnsafeBufferPointer { events in
            for index in events.indices {
                guard !general, let engine, events[index].bytes.count <= maxEventBytes, !TapPoints.anyWaiting else {
                    processEvent(events[index], at: index, of: batch, timed: timed, decodesFirst: true)
                    continue
                }
                enter(index, of: batch, timed: timed)
                if let problem = Self.objectProblem(events[index].bytes) {
                    deadLetter(component: plan.nodes[currentSource].name, reason: problem, detail: nil, event: events[index])
                    continue
                }
                current = events[index]
                emitted[currentSource] += 1
                let healthy = runLine(line, engine: engine)
                releaseLive(event: index)
                if !healthy {
                    rebuildAfterPoison()
                    general = true
                }
            }
        }
    }

    /// One event along the line. Returns false if the Lua state was poisoned.
    func runLine(_ line: LuaLine, engine: LuaEngine) -> Bool {
        var h: LuaEventHandle? = nil
        var mapped = false   // h is a map's result, not the event as it came
        for step in line.steps {
            received[step.node] += 1
            guard step.slot < functions.count else { return true }
            let fn = functions[step.slot]
            guard let handle = h ?? decode(current.bytes, component: plan.nodes[step.node].name,
                                           fields: decodeFields.at(step.node), engine: engine) else { return true }
            if !step.isMap {
                switch engine.test(fn, handle, meta: current.meta) {
                case .success(true): emitted[step.node] += 1; h = handle
                case .success(false): return true
                case .failure(let failure): return luaFailed(failure, component: plan.nodes[step.node].name, node: nil)
                }
                continue
            }
            var outputs = outputArrays.popLast() ?? []
            defer { outputs.removeAll(keepingCapacity: true); outputArrays.append(outputs) }
            let result = engine.map(fn, handle, meta: current.meta, into: &outputs)
            live.append(contentsOf: outputs)
            if case .failure(let failure) = result {
                return luaFailed(failure, component: plan.nodes[step.node].name, node: step.node)
            }
            guard outputs.count == 1, engine.shape(outputs[0]) == .object else {
                return walkOutputs(outputs, of: step.node)   // none, several (ctx.emit), or not an event
            }
            emitted[step.node] += 1
            h = outputs[0]
            mapped = true
        }
        // The last step kept or made the event: into the sink.
        sinkReceived[line.sink] += 1
        if let h, mapped {
            encode(h, into: line.sink, engine: engine)
        } else {
            append(current.bytes, to: line.sink)   // filters only: the bytes as they came
        }
        return true
    }
}
