import SluiceCore
import SluiceLua
import SluiceSpec

/// What one worker produced for one batch.
struct WorkerOutput: Sendable {
    /// Encoded events per sink, indexed like `Plan.sinks`.
    var sinks: [SinkBatch]
    var deadLetters: [DeadLetter]
    var counts: [String: ComponentCounts]
    /// Events bound for stateful transforms: `[operator][lane]`, in input order.
    var keyed: [[[KeyedEvent]]] = []
    /// Events dead-lettered as `late` on their way into each stateful operator (judged against their
    /// source's or partition's watermark here, before the exchange), indexed like `Plan.operators`.
    var late: [Int] = []
}

/// An event a stateful transform produced, on its way to what follows the transform.
struct OperatorOutput: Sendable {
    var bytes: [UInt8]
    /// Its event time (a join result: the right event's; a window: its last millisecond).
    var time: Int64
    var meta: EventMeta?
}

/// Settings a worker needs to build its Lua engine.
struct LuaSettings: Sendable {
    var udfDir: String
    var limits: LuaLimits
    var version: Int
    var log: @Sendable (String, String) -> Void
    /// With hot reload: the version workers should run (overrides `udfDir` and `version`).
    var live: LiveCode?
    /// `lookups:` tables for `ctx.lookup` (nil = none).
    var lookups: LookupRegistry?
}

/// Runs batches through the fused stateless part of the plan, depth-first per event.
/// Owns one Lua engine, so a worker is confined to the thread that created it.
///
/// This file, in order: the Lua engine's life (build, adopt a reloaded version, rebuild after a
/// poisoning); a batch (`process` for a source's batch, `processOutputs` for what a stateful
/// operator produced); walking the plan (filters, maps, declarative chains, routing to stateful
/// operators). Beside it: `Worker+Lines` (the loops for a declarative chain or a Lua line into one
/// sink), `Worker+Suspension` (HTTP lookups: park, resume, publish in input order) and
/// `Worker+Delivery` (sinks, dead letters, taps; bytes and Lua values). The per-batch state below
/// is internal only so that those files can reach it: nothing outside `Worker` uses it.
final class Worker {
    /// An event on its way through the plan: raw bytes, or a Lua value plus the bytes it was decoded from
    /// (kept while the value is known to be unchanged, so it is written out exactly as it came in).
    enum Payload {
        case bytes(ArraySlice<UInt8>)
        case lua(LuaEventHandle, original: ArraySlice<UInt8>?)
    }

    enum Verdict { case pass, reject, failed, poisoned, suspended }

    let plan: Plan
    let lua: LuaSettings
    let needsLua: Bool
    var engine: LuaEngine?
    /// Resolved functions, indexed by `LuaRef.slot`.
    var functions: [LuaFunctionID] = []
    /// The fields each decode into Lua needs (only those are built as Lua values).
    var decodeFields = DecodeFields(nodes: 0, slots: 0)

    // Per-batch state.
    var live: [LuaEventHandle] = []
    var sinkOut: [SinkBatch] = []
    var dead: [DeadLetter] = []
    var received: [Int] = []
    var emitted: [Int] = []
    var rejected: [Int] = []
    var sinkReceived: [Int] = []
    var current = Event(bytes: [])
    /// Event time of the current event and the watermark of its input just before it.
    var currentTime = EventTime.missing
    var currentWatermarkBefore = EventTime.missing
    var keyedOut: [[[KeyedEvent]]] = []
    var lateOut: [Int] = []
    /// Per operator: name, key template per input, workers (copied out of the plan once).
    let operatorNames: [String]
    let operatorKeys: [[KeyTemplate]]
    let operatorLanes: [Int]
    /// Per operator: the reducers to pre-aggregate with (an aggregate with declarative reducers,
    /// not a session window, not `on_change`) and its window; nil = send every event.
    let preAggregators: [(Reducers, WindowSpec)?]
    /// This batch's partials: (operator, key, window start) -> index in `keyedOut[op][lane]`.
    var partialIndex: [PartialID: Int] = [:]
    struct PartialID: Hashable {
        var op: Int
        var key: StateKey
        var start: Int64
    }
    var keyBuffer: [UInt8] = []
    /// Suspended UDF calls (HTTP lookups), their events' ordering and handles (`SuspendedWork`).
    var suspended = SuspendedWork<Payload>()
    /// The pipeline has lookups that can suspend a call (HTTP): Lua stages run as coroutines.
    let suspendable: Bool
    let lookupInbox: LookupInbox?
    /// Index of the current event in its batch (the order results are published in).
    var currentIndex = 0
    var currentSource = 0
    var currentFormat = DataFormat.json
    /// Set when the current source feeds exactly one declarative chain: validation happens inside it.
    var fusedEntry: (DeclarativeChain, [Int])?
    /// The current source feeds one stateful transform and nothing else: its events are validated
    /// while their key is found (one pass), then routed.
    var keyedEntry: (op: Int, input: Int)?
    var scratch: [UInt8] = []
    /// Per source (spec order): its `LuaLine`, if its plan is one.
    let luaLines: [LuaLine?]
    /// Emptied output arrays of map calls, kept for the next call.
    var outputArrays: [[LuaEventHandle]] = []
    /// `GET /tap` sampling points (nil without an admin endpoint); a node's slot has the node's index.
    var taps: TapPoints?

    init(plan: Plan, lua: LuaSettings) throws(LuaLoadError) {
        self.plan = plan
        self.lua = lua
        self.needsLua = !plan.luaCode.isEmpty
        suspendable = needsLua && (lua.lookups?.canSuspend ?? false)
        lookupInbox = suspendable ? LookupInbox() : nil
        operatorNames = plan.operators.map(\.name)
        operatorKeys = plan.operators.map { $0.inputs.map(\.key) }
        operatorLanes = plan.operators.map(\.parallelism)
        preAggregators = plan.operators.map { op -> (Reducers, WindowSpec)? in
            guard case .aggregate(let a) = op.spec.kind, case .reducers(let r) = a.reduce, a.emit != .onChange else { return nil }
            if case .session = a.window { return nil }
            return (Reducers(r), a.window)
        }
        luaLines = plan.sourceNodes.map { LuaLine(plan, from: $0) }
        if needsLua { try buildEngine() }
    }

    /// The code version the engine was built from.
    private(set) var codeVersion = 0
    var codeBuilt: LiveCode.Version?

    // MARK: - The Lua engine

    func buildEngine(_ version: LiveCode.Version? = nil) throws(LuaLoadError) {
        let target = version ?? lua.live?.current ?? LiveCode.Version(number: lua.version, dir: lua.udfDir)
        let e = try LuaEngine(udfDir: target.dir, limits: lua.limits, version: target.number, log: lua.log)
        if let lookups = lua.lookups {
            if let lookupInbox { e.setLookups(WorkerLookups(registry: lookups, inbox: lookupInbox)) } else { e.setLookups(lookups) }
        }
        var functions: [LuaFunctionID] = []
        for code in plan.luaCode {
            switch code {
            case .udf(let module, let function): functions.append(try e.function(module: module, name: function))
            case .expression(let source, let label): functions.append(try e.expression(source, label: label))
            }
        }
        self.engine = e
        self.functions = functions
        decodeFields = DecodeFields(plan: plan) { e.fieldsRead(by: functions[$0]) }
        codeVersion = target.number
        codeBuilt = target
        engineProblem = nil
    }

    /// At a batch boundary: switch to the UDF code version stamped on the batch when it left the work
    /// queue (so versions never go backwards in output order). If it cannot load here, keep running the
    /// current version (the reloader already compiled it, so this only happens on resource trouble).
    func adopt(_ version: LiveCode.Version?) {
        guard needsLua, let version, version.number > codeVersion else { return }
        do { try buildEngine(version) }
        catch { lua.log("error", "worker keeps UDF version \(codeVersion): \(error)") }
    }

    // MARK: - A batch

    /// Clears the per-batch counters and outputs, after switching code versions if asked to
    /// (and retrying an engine that could not be rebuilt).
    func beginBatch(_ code: LiveCode.Version?) {
        retryEngine()
        adopt(code)
        received = Array(repeating: 0, count: plan.nodes.count)
        emitted = received
        rejected = received
        sinkReceived = Array(repeating: 0, count: plan.sinks.count)
        sinkOut = Array(repeating: SinkBatch(), count: plan.sinks.count)
        dead = []
        resetKeyed()
    }

    /// Walks one event's value from `node` and frees the Lua handles it made.
    func walkEvent(from node: Int, _ value: inout Payload) {
        let healthy = walk(node, &value)
        releaseLive(event: currentIndex)
        if !healthy { rebuildAfterPoison() }
    }

    /// Frees the handles the current event's walk made, or hands them to its suspended calls.
    func releaseLive(event: Int) {
        if suspended.isWaiting(event) {
            suspended.keep(live, for: event)
        } else if let engine {
            for h in live { engine.release(h) }
        }
        live.removeAll(keepingCapacity: true)
    }

    func endBatch() -> WorkerOutput {
        if suspended.active { finishSuspended() }
        if let engine { batchLuaCounters = engine.takeCounters() }
        return WorkerOutput(sinks: sinkOut, deadLetters: dead, counts: countsByName(), keyed: keyedOut, late: lateOut)
    }

    func process(_ batch: Batch, code: LiveCode.Version? = nil) -> WorkerOutput {
        beginBatch(code)
        currentSource = plan.sourceNodes[batch.source]
        if case .source(let format) = plan.nodes[currentSource].operation { currentFormat = format }
        fusedEntry = nil
        let edges = plan.nodes[currentSource].downstream
        if edges.count == 1, case .node(let first) = edges[0], case .declarative(let chain, let through) = plan.nodes[first].operation {
            fusedEntry = (chain, through)
        }
        keyedEntry = nil
        if edges.count == 1, case .keyed(let op, let input) = edges[0] { keyedEntry = (op, input) }
        // When the only consumer decodes into Lua, the decoder validates: no separate pass.
        var decodesFirst = false
        if needsLua, edges.count == 1, case .node(let first) = edges[0] {
            switch plan.nodes[first].operation {
            case .map, .flatMap, .filter(.lua): decodesFirst = true
            default: break
            }
        }

        let timed = batch.times.count == batch.events.count
        if currentFormat == .json, let (chain, through) = fusedEntry, let sink = directSink(after: through) {
            processDirect(batch, chain: chain, through: through, sink: sink, timed: timed)
            return endBatch()
        }
        if currentFormat == .json, !suspendable, engine != nil, let line = luaLines[batch.source] {
            processLine(batch, line, timed: timed)
            return endBatch()
        }
        batch.events.withUnsafeBufferPointer { events in
            for index in events.indices {   // by index: no copy of each event
                processEvent(events[index], at: index, of: batch, timed: timed, decodesFirst: decodesFirst)
            }
        }
        return endBatch()
    }

    /// Event `index` of the batch becomes the current one, and its source has received it.
    func enter(_ index: Int, of batch: Batch, timed: Bool) {
        currentIndex = index
        if timed {
            currentTime = batch.times[index]
            currentWatermarkBefore = batch.watermarksBefore[index]
        }
        received[currentSource] += 1
    }

    /// One event of a source's batch, through the whole plan.
    func processEvent(_ event: Event, at index: Int, of batch: Batch, timed: Bool, decodesFirst: Bool) {
        enter(index, of: batch, timed: timed)
        if event.bytes.count > maxEventBytes {
            rejected[currentSource] += 1
            deadLetter(component: plan.nodes[currentSource].name,
                       reason: EventLimits.tooLarge(event.bytes.count, max: maxEventBytes), detail: nil, event: event)
            return
        }
        if deadLetterWithoutEngine(event) { return }
        if currentFormat == .json, let (chain, through) = fusedEntry {
            current = event
            emitted[currentSource] += 1
            if TapPoints.anyWaiting, let taps { taps.offer(currentSource) { Array(event.bytes) } }
            received[through[0]] += 1
            // Like `walkEvent`: free the Lua handles what follows the chain made (a map after it).
            let healthy = runChain(chain, through: through, on: event.bytes, validate: true)
            releaseLive(event: currentIndex)
            if !healthy { rebuildAfterPoison() }
            return
        }
        if currentFormat == .json, let (op, input) = keyedEntry {
            switch operatorKeys[op][input].validateAndRenderComplete(event.bytes, into: &keyBuffer) {
            case .failure(let error):
                deadLetter(component: plan.nodes[currentSource].name, reason: "invalid JSON: \(error)", detail: nil, event: event)
            case .success(let complete):
                current = event
                emitted[currentSource] += 1
                if TapPoints.anyWaiting, let taps, taps.isWaiting(currentSource) { taps.offer(currentSource) { Array(event.bytes) } }
                routeNow(event.bytes, to: op, input: input, keyRendered: complete)
            }
            return
        }
        if currentFormat == .json, let problem = decodesFirst ? Self.objectProblem(event.bytes) : Self.jsonProblem(event.bytes) {
            deadLetter(component: plan.nodes[currentSource].name, reason: problem, detail: nil, event: event)
            return
        }
        current = event
        var value = Payload.bytes(event.bytes)
        walkEvent(from: currentSource, &value)
    }

    func resetKeyed() {
        partialIndex.removeAll(keepingCapacity: true)
        if lateOut.count != plan.operators.count || lateOut.contains(where: { $0 != 0 }) {
            lateOut = Array(repeating: 0, count: plan.operators.count)
        }
        if keyedOut.count != plan.operators.count || keyedOut.contains(where: { !$0.allSatisfy(\.isEmpty) }) {
            keyedOut = plan.operators.map { Array(repeating: [], count: $0.parallelism) }
        }
    }

    /// Runs the outputs of stateful operator `op` through what follows it (fused stateless
    /// transforms, sinks, further exchanges). `source` names the stage for dead letters.
    func processOutputs(_ outputs: [OperatorOutput], of op: Int, code: LiveCode.Version? = nil) -> WorkerOutput {
        beginBatch(code)
        currentFormat = .json
        let node = plan.operators[op].node
        currentSource = node
        for (index, o) in outputs.enumerated() {
            currentIndex = index
            current = Event(bytes: o.bytes, meta: o.meta)
            if deadLetterWithoutEngine(current) { continue }
            currentTime = o.time
            currentWatermarkBefore = EventTime.missing   // judged by the receiving stage, against its channel
            var value = Payload.bytes(current.bytes)
            walkEvent(from: node, &value)
        }
        return endBatch()
    }

    /// The Lua engine and resolved functions, for the UDFs of stateful operators (same thread).
    var luaEngine: LuaEngine? { engine }
    func function(_ ref: LuaRef) -> LuaFunctionID? { ref.slot < functions.count ? functions[ref.slot] : nil }

    /// Switches to a newer UDF version between batches (stateful stages call this per message).
    func adoptCode(_ version: LiveCode.Version?) { adopt(version) }

    /// After a stateful operator's UDF call poisoned the engine: a fresh one of the same version.
    func recoverFromPoison() { if engine?.isPoisoned ?? false { rebuildAfterPoison() } }

    /// `settings.max_event_bytes`: larger events are dead-lettered `too_large` before any stage sees them.
    var maxEventBytes = EventLimits.defaultMaxEventBytes

    /// `ctx.count` totals taken at the end of the last batch.
    private(set) var batchLuaCounters: [(String, Int64)] = []

    /// Only checks that the text starts like an object (the Lua decoder validates the rest).
    static func objectProblem(_ bytes: ArraySlice<UInt8>) -> String? {
        for b in bytes where b != 0x20 && b != 0x09 && b != 0x0D {
            return b == UInt8(ascii: "{") ? nil : "invalid event: expected a JSON object"
        }
        return "invalid event: expected a JSON object"
    }

    static func jsonProblem(_ bytes: ArraySlice<UInt8>) -> String? {
        bytes.withUnsafeBytes { raw in JSONValidator.validateObject(raw).map { "invalid JSON: \($0)" } }
    }

    func rebuildAfterPoison() {
        // Calls suspended in the poisoned engine die with it: their events are dead-lettered.
        for parked in suspended.abandonAll() {
            restore(parked.context)
            currentIndex = parked.event
            deadLetter(component: parked.component,
                       reason: "the Lua engine went over its memory limit while this event's call was suspended",
                       detail: nil, event: current)
        }
        engine = nil
        do {
            try buildEngine(codeBuilt)   // the same version: the rest of the batch must not change code
        } catch {
            engine = nil
            let problem = "the Lua engine could not be rebuilt after it went over its memory limit: \(error)"
            engineProblem = problem
            lua.log("error", "worker: \(problem); its events are dead-lettered until a rebuild succeeds")
        }
    }

    /// Why the engine is missing (a failed rebuild), while it is.
    var engineProblem: String?

    /// At a batch boundary: without an engine, try once more to build it.
    func retryEngine() {
        guard needsLua, engine == nil else { return }
        do {
            try buildEngine(codeBuilt)
            lua.log("info", "worker: Lua engine rebuilt (UDF version \(codeVersion))")
        } catch {
            engineProblem = "the Lua engine could not be rebuilt: \(error)"
        }
    }

    /// Dead-letters `event` when the Lua engine is missing (nothing can run it). Returns true if it did.
    func deadLetterWithoutEngine(_ event: Event) -> Bool {
        guard needsLua, engine == nil else { return false }
        let reason = engineProblem ?? "the Lua engine could not be rebuilt"
        deadLetter(component: plan.nodes[currentSource].name, reason: "worker: \(reason)", detail: nil, event: event)
        return true
    }

    func countsByName() -> [String: ComponentCounts] {
        var result: [String: ComponentCounts] = [:]
        for (i, node) in plan.nodes.enumerated() where received[i] + emitted[i] + rejected[i] > 0 {
            var c = ComponentCounts()
            c.received = received[i]; c.emitted = emitted[i]; c.deadLettered = rejected[i]
            result[node.name] = c
        }
        return result
    }

    // MARK: - Walking the plan

    /// Sends `value` (the output of `node`) to everything downstream. Returns false if the Lua state was poisoned.
    func walk(_ node: Int, _ value: inout Payload) -> Bool {
        emitted[node] += 1
        if TapPoints.anyWaiting, let taps, taps.isWaiting(node) { taps.offer(node) { sample(value) } }
        let edges = plan.nodes[node].downstream
        for (i, edge) in edges.enumerated() {
            switch edge {
            case .sink(let sink, let when):
                if let when {
                    var tested = value
                    if suspendable, i < edges.count - 1, case .lua(let h, let original) = value, let engine {
                        let copy = engine.copy(h)   // a suspended test must not see later siblings' changes
                        live.append(copy)
                        tested = .lua(copy, original: original)
                    }
                    switch check(when, &tested, component: plan.sinks[sink].name, after: .when(sink: sink),
                                 fields: decodeFields.forTest(when)) {
                    case .pass: break
                    case .reject, .failed, .suspended: continue
                    case .poisoned: return false
                    }
                }
                deliver(&value, to: sink, last: i == edges.count - 1)
            case .keyed(let op, let input):
                route(&value, to: op, input: input)
            case .node(let child):
                var childValue = value
                if case .lua(let h, let original) = value, plan.nodes[child].mutates || suspendable, i < edges.count - 1, let engine {
                    let copy = engine.copy(h)
                    live.append(copy)
                    childValue = .lua(copy, original: original)
                }
                if !apply(child, &childValue) { return false }
            }
        }
        return true
    }

    func apply(_ node: Int, _ value: inout Payload) -> Bool {
        received[node] += 1
        let name = plan.nodes[node].name
        switch plan.nodes[node].operation {
        case .source:
            return walk(node, &value)
        case .filter(let condition):
            switch check(condition, &value, component: name, after: .filter(node: node), fields: decodeFields.at(node)) {
            case .pass: return walk(node, &value)
            case .reject, .failed, .suspended: return true
            case .poisoned: return false
            }
        case .map(let code), .flatMap(let code):
            guard let engine, code.slot < functions.count else { return true }
            let fn = functions[code.slot]
            guard let h = handle(&value, component: name, fields: decodeFields.at(node)) else { return true }
            // A reused array (one per nesting level of maps): no allocation per call.
            var outputs = outputArrays.popLast() ?? []
            defer { outputs.removeAll(keepingCapacity: true); outputArrays.append(outputs) }
            let result: Result<Void, LuaFailure>
            let isMap: Bool
            if case .map = plan.nodes[node].operation { isMap = true } else { isMap = false }
            if suspendable {
                var truthy = false
                switch engine.start(fn, h, meta: current.meta, mode: isMap ? .map : .flatMap, truthy: &truthy, into: &outputs) {
                case .success(.suspended(let call, let token)):
                    suspend(call: call, token: token, then: .outputs(node: node), value: value, component: name)
                    return true
                case .success(.done): result = .success(())
                case .failure(let f): result = .failure(f)
                }
            } else if isMap {
                result = engine.map(fn, h, meta: current.meta, into: &outputs)
            } else {
                result = engine.flatMap(fn, h, meta: current.meta, into: &outputs)
            }
            live.append(contentsOf: outputs)
            if case .failure(let failure) = result {
                return luaFailed(failure, component: name, node: node)
            }
            return walkOutputs(outputs, of: node)
        case .declarative(let chain, let through):
            guard let bytes = bytes(&value, component: name) else { return true }
            return runChain(chain, through: through, on: bytes, validate: false)
        case .keyed:
            return true   // reached through `.keyed` edges only
        }
    }

    /// After a map / flat_map call: checks the results are events, then walks each.
    func walkOutputs(_ outputs: [LuaEventHandle], of node: Int) -> Bool {
        let name = plan.nodes[node].name
        guard let engine else { return true }
        if currentFormat == .json, let problem = EventShapeCheck.problem(outputs, engine: engine, operation: plan.nodes[node].operation) {
            rejected[node] += 1
            deadLetter(component: name, reason: problem, detail: nil, event: current)
            return true
        }
        for o in outputs {
            var v = Payload.lua(o, original: nil)
            if !walk(node, &v) { return false }
        }
        return true
    }

    /// Sends the current event towards the worker of operator `op` that owns its key, or to the
    /// dead letter sink when it has no time (`no_time`), is behind its input's watermark (`late`)
    /// or lacks a key field (`no_key`).
    func route(_ value: inout Payload, to op: Int, input: Int) {
        guard let b = bytes(&value, component: operatorNames[op]) else { return }
        if suspended.deferring(currentIndex) {
            suspended.postpone(.route(op, input, Array(b), SuspensionContext(
                current: current, time: currentTime, watermarkBefore: currentWatermarkBefore,
                source: currentSource, format: currentFormat)), for: currentIndex)
            return
        }
        routeNow(b, to: op, input: input)
    }

    /// `keyRendered`: the key is already in `keyBuffer` (found while validating), true if complete.
    func routeNow(_ b: ArraySlice<UInt8>, to op: Int, input: Int, keyRendered: Bool? = nil) {
        let name = operatorNames[op]
        let inputName = plan.nodes[currentSource].name
        if currentTime == EventTime.missing {
            deadLetter(component: name, reason: "no_time",
                       detail: "the event has no usable event time (an integer of milliseconds or an RFC 3339 string)",
                       event: Event(slice: b, meta: current.meta, position: current.position))
            return
        }
        if currentWatermarkBefore != EventTime.missing && currentTime < currentWatermarkBefore {
            lateOut[op] += 1
            deadLetter(component: name, reason: "late",
                       detail: "event time \(currentTime) is behind the watermark \(currentWatermarkBefore) of input '\(inputName)'",
                       event: Event(slice: b, meta: current.meta, position: current.position))
            return
        }
        guard keyRendered ?? operatorKeys[op][input].renderComplete(b, into: &keyBuffer) else {
            deadLetter(component: name, reason: "no_key",
                       detail: "a field of the key '\(operatorKeys[op][input])' is missing or null",
                       event: Event(slice: b, meta: current.meta, position: current.position))
            return
        }
        let key = StateKey(keyBuffer.withUnsafeBufferPointer { Array($0) })   // an exact-size copy: keyBuffer stays ours
        let lane = key.lane(of: operatorLanes[op])
        if let (reducers, window) = preAggregators[op] {
            // Local half of a local/global aggregate: one partial per key and window per batch.
            for (start, end) in window.windows(for: currentTime) {
                let id = PartialID(op: op, key: key, start: start)
                if let i = partialIndex[id] {
                    let grown = reducers.add(b, to: &keyedOut[op][lane][i].partial!.acc)
                    keyedOut[op][lane][i].partial!.events += 1
                    keyedOut[op][lane][i].partial!.bytes += grown
                } else {
                    var acc = reducers.empty()
                    let grown = reducers.add(b, to: &acc)
                    partialIndex[id] = keyedOut[op][lane].count
                    keyedOut[op][lane].append(KeyedEvent(key: key, time: currentTime, input: input, bytes: [], meta: current.meta,
                                                         source: currentSource, position: current.position,
                                                         partial: PartialAggregate(start: start, end: end, acc: acc, events: 1, bytes: grown)))
                }
            }
            return
        }
        keyedOut[op][lane].append(
            KeyedEvent(key: key, time: currentTime, input: input, bytes: Array(b), meta: current.meta,
                       source: currentSource, position: current.position))
    }

    /// Runs a fused declarative chain; a kept event continues after the chain's last node.
    func runChain(_ chain: DeclarativeChain, through: [Int], on bytes: ArraySlice<UInt8>, validate: Bool) -> Bool {
        // Reuse one buffer: by the next event nothing references it any more, so no allocation.
        var out = scratch
        scratch = []
        out.removeAll(keepingCapacity: true)
        defer { scratch = out }
        if TapPoints.anyWaiting, through.count > 1, let taps { sampleFused(through, bytes, taps) }
        switch bytes.withUnsafeBytes({ chain.run($0, into: &out, validate: validate) }) {
        case .kept:
            for n in through.dropLast() { emitted[n] += 1; received[n] += 1 }
            received[through.last!] += 1
            received[through.first!] -= 1   // counted by the caller
            var v = Payload.bytes(out[...])
            return walk(through.last!, &v)
        case .dropped:
            return true
        case .invalid(let error):
            deadLetter(component: plan.nodes[currentSource].name, reason: "invalid JSON: \(error)", detail: nil, event: current)
            return true
        }
    }

    func check(_ condition: Condition, _ value: inout Payload, component: String, after: AfterSuspension,
                       fields: LuaFieldSet? = nil) -> Verdict {
        switch condition {
        case .match(let match):
            guard let bytes = bytes(&value, component: component) else { return .failed }
            return bytes.withUnsafeBytes { match.matches($0) } ? .pass : .reject
        case .lua(let code):
            guard let engine, code.slot < functions.count else { return .reject }
            let fn = functions[code.slot]
            guard let h = handle(&value, component: component, fields: fields) else { return .failed }
            let result: Result<Bool, LuaFailure>
            if suspendable {
                var truthy = false
                var none: [LuaEventHandle] = []
                switch engine.start(fn, h, meta: current.meta, mode: .test, truthy: &truthy, into: &none) {
                case .success(.suspended(let call, let token)):
                    suspend(call: call, token: token, then: after, value: value, component: component)
                    return .suspended
                case .success(.done): result = .success(truthy)
                case .failure(let f): result = .failure(f)
                }
            } else {
                result = engine.test(fn, h, meta: current.meta)
            }
            switch result {
            case .success(let keep): return keep ? .pass : .reject
            case .failure(let failure):
                return luaFailed(failure, component: component, node: nil) ? .failed : .poisoned
            }
        }
    }

    /// Sink receive counts for the last batch, indexed like `Plan.sinks`.
    var lastSinkCounts: [Int] { sinkReceived }
}
