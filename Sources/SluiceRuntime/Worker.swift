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
/// The file in order: the Lua engine's life (build, adopt a reloaded version, rebuild after a
/// poisoning); a batch (`process` for a source's batch, `processOutputs` for what a stateful
/// operator produced); walking the plan (filters, maps, declarative chains, routing to stateful
/// operators); suspended calls (HTTP lookups: park, resume, publish in input order, with
/// `SuspendedWork`); delivering to sinks and taps; conversions between bytes and Lua values.
final class Worker {
    /// An event on its way through the plan: raw bytes, or a Lua value plus the bytes it was decoded from
    /// (kept while the value is known to be unchanged, so it is written out exactly as it came in).
    private enum Payload {
        case bytes(ArraySlice<UInt8>)
        case lua(LuaEventHandle, original: ArraySlice<UInt8>?)
    }

    private enum Verdict { case pass, reject, failed, poisoned, suspended }

    private let plan: Plan
    private let lua: LuaSettings
    private let needsLua: Bool
    private var engine: LuaEngine?
    /// Resolved functions, indexed by `LuaRef.slot`.
    private var functions: [LuaFunctionID] = []
    /// The fields each decode into Lua needs (only those are built as Lua values).
    private var decodeFields = DecodeFields(nodes: 0, slots: 0)

    // Per-batch state.
    private var live: [LuaEventHandle] = []
    private var sinkOut: [SinkBatch] = []
    private var dead: [DeadLetter] = []
    private var received: [Int] = []
    private var emitted: [Int] = []
    private var rejected: [Int] = []
    private var sinkReceived: [Int] = []
    private var current = Event(bytes: [])
    /// Event time of the current event and the watermark of its input just before it.
    private var currentTime = EventTime.missing
    private var currentWatermarkBefore = EventTime.missing
    private var keyedOut: [[[KeyedEvent]]] = []
    private var lateOut: [Int] = []
    /// Per operator: name, key template per input, workers (copied out of the plan once).
    private let operatorNames: [String]
    private let operatorKeys: [[KeyTemplate]]
    private let operatorLanes: [Int]
    /// Per operator: the reducers to pre-aggregate with (an aggregate with declarative reducers,
    /// not a session window, not `on_change`) and its window; nil = send every event.
    private let preAggregators: [(Reducers, WindowSpec)?]
    /// This batch's partials: (operator, key, window start) -> index in `keyedOut[op][lane]`.
    private var partialIndex: [PartialID: Int] = [:]
    private struct PartialID: Hashable {
        var op: Int
        var key: StateKey
        var start: Int64
    }
    private var keyBuffer: [UInt8] = []
    /// Suspended UDF calls (HTTP lookups), their events' ordering and handles (`SuspendedWork`).
    private var suspended = SuspendedWork<Payload>()
    /// The pipeline has lookups that can suspend a call (HTTP): Lua stages run as coroutines.
    private let suspendable: Bool
    private let lookupInbox: LookupInbox?
    /// Index of the current event in its batch (the order results are published in).
    private var currentIndex = 0
    private var currentSource = 0
    private var currentFormat = DataFormat.json
    /// Set when the current source feeds exactly one declarative chain: validation happens inside it.
    private var fusedEntry: (DeclarativeChain, [Int])?
    /// The current source feeds one stateful transform and nothing else: its events are validated
    /// while their key is found (one pass), then routed.
    private var keyedEntry: (op: Int, input: Int)?
    private var scratch: [UInt8] = []
    /// Emptied output arrays of map calls, kept for the next call.
    private var outputArrays: [[LuaEventHandle]] = []
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
        if needsLua { try buildEngine() }
    }

    /// The code version the engine was built from.
    private(set) var codeVersion = 0
    private var codeBuilt: LiveCode.Version?

    // MARK: - The Lua engine

    private func buildEngine(_ version: LiveCode.Version? = nil) throws(LuaLoadError) {
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
    private func adopt(_ version: LiveCode.Version?) {
        guard needsLua, let version, version.number > codeVersion else { return }
        do { try buildEngine(version) }
        catch { lua.log("error", "worker keeps UDF version \(codeVersion): \(error)") }
    }

    // MARK: - A batch

    /// Clears the per-batch counters and outputs, after switching code versions if asked to
    /// (and retrying an engine that could not be rebuilt).
    private func beginBatch(_ code: LiveCode.Version?) {
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
    private func walkEvent(from node: Int, _ value: inout Payload) {
        let healthy = walk(node, &value)
        releaseLive(event: currentIndex)
        if !healthy { rebuildAfterPoison() }
    }

    /// Frees the handles the current event's walk made, or hands them to its suspended calls.
    private func releaseLive(event: Int) {
        if suspended.isWaiting(event) {
            suspended.keep(live, for: event)
        } else if let engine {
            for h in live { engine.release(h) }
        }
        live.removeAll(keepingCapacity: true)
    }

    private func endBatch() -> WorkerOutput {
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
        if currentFormat == .json, !suspendable, engine != nil, let line = LuaLine(plan, from: currentSource) {
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

    /// One event of a source's batch, through the whole plan.
    private func processEvent(_ event: Event, at index: Int, of batch: Batch, timed: Bool, decodesFirst: Bool) {
        currentIndex = index
        if timed {
            currentTime = batch.times[index]
            currentWatermarkBefore = batch.watermarksBefore[index]
        }
        received[currentSource] += 1
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

    /// The sink a fused chain's kept events go to when that is all that follows the chain (one
    /// sink, no `when`), so they can be written straight into its batch; nil otherwise.
    private func directSink(after through: [Int]) -> Int? {
        guard let last = through.last, plan.nodes[last].downstream.count == 1,
              case .sink(let sink, nil) = plan.nodes[last].downstream[0] else { return nil }
        return sink
    }

    /// A source's batch into a fused declarative chain that feeds one sink: each kept event's output
    /// is written straight into the sink's batch and the counters are added once per batch. An
    /// event that needs more (too large, a tap waiting, no Lua engine) takes `processEvent`.
    private func processDirect(_ batch: Batch, chain: DeclarativeChain, through: [Int], sink: Int, timed: Bool) {
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
    private func processLine(_ batch: Batch, _ line: LuaLine, timed: Bool) {
        var general = false
        batch.events.withUnsafeBufferPointer { events in
            for index in events.indices {
                guard !general, let engine, events[index].bytes.count <= maxEventBytes, !TapPoints.anyWaiting else {
                    processEvent(events[index], at: index, of: batch, timed: timed, decodesFirst: true)
                    continue
                }
                currentIndex = index
                if timed {
                    currentTime = batch.times[index]
                    currentWatermarkBefore = batch.watermarksBefore[index]
                }
                received[currentSource] += 1
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
    private func runLine(_ line: LuaLine, engine: LuaEngine) -> Bool {
        var h: LuaEventHandle? = nil
        var mapped = false   // h is a map's result, not the event as it came
        for step in line.steps {
            received[step.node] += 1
            guard step.slot < functions.count else { return true }
            let fn = functions[step.slot]
            let handle: LuaEventHandle
            if let h { handle = h } else {
                switch current.bytes.withUnsafeBytes({ engine.decodeJSON($0, fields: decodeFields.at(step.node)) }) {
                case .success(let decoded):
                    live.append(decoded)
                    handle = decoded
                case .failure(let failure):
                    deadLetter(component: plan.nodes[step.node].name, reason: failure.message, detail: failure.traceback, event: current)
                    return true
                }
            }
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
        guard let h, mapped else {
            append(current.bytes, to: line.sink)   // filters only: the bytes as they came
            return true
        }
        var failure: LuaFailure?
        let written = sinkOut[line.sink].appendWritten(meta: current.meta) { data in
            if case .failure(let f) = engine.encodeJSON(h, into: &data) { failure = f; return false }
            return true
        }
        if !written, let failure {
            deadLetter(component: plan.sinks[line.sink].name, reason: failure.message, detail: failure.traceback, event: current)
        }
        return true
    }

    private func resetKeyed() {
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
    private static func objectProblem(_ bytes: ArraySlice<UInt8>) -> String? {
        for b in bytes where b != 0x20 && b != 0x09 && b != 0x0D {
            return b == UInt8(ascii: "{") ? nil : "invalid event: expected a JSON object"
        }
        return "invalid event: expected a JSON object"
    }

    private static func jsonProblem(_ bytes: ArraySlice<UInt8>) -> String? {
        bytes.withUnsafeBytes { raw in JSONValidator.validateObject(raw).map { "invalid JSON: \($0)" } }
    }

    private func rebuildAfterPoison() {
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
    private var engineProblem: String?

    /// At a batch boundary: without an engine, try once more to build it.
    private func retryEngine() {
        guard needsLua, engine == nil else { return }
        do {
            try buildEngine(codeBuilt)
            lua.log("info", "worker: Lua engine rebuilt (UDF version \(codeVersion))")
        } catch {
            engineProblem = "the Lua engine could not be rebuilt: \(error)"
        }
    }

    /// Dead-letters `event` when the Lua engine is missing (nothing can run it). Returns true if it did.
    private func deadLetterWithoutEngine(_ event: Event) -> Bool {
        guard needsLua, engine == nil else { return false }
        let reason = engineProblem ?? "the Lua engine could not be rebuilt"
        deadLetter(component: plan.nodes[currentSource].name, reason: "worker: \(reason)", detail: nil, event: event)
        return true
    }

    private func countsByName() -> [String: ComponentCounts] {
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
    private func walk(_ node: Int, _ value: inout Payload) -> Bool {
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

    private func apply(_ node: Int, _ value: inout Payload) -> Bool {
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
    private func walkOutputs(_ outputs: [LuaEventHandle], of node: Int) -> Bool {
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
    private func route(_ value: inout Payload, to op: Int, input: Int) {
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
    private func routeNow(_ b: ArraySlice<UInt8>, to op: Int, input: Int, keyRendered: Bool? = nil) {
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
    private func runChain(_ chain: DeclarativeChain, through: [Int], on bytes: ArraySlice<UInt8>, validate: Bool) -> Bool {
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

    private func check(_ condition: Condition, _ value: inout Payload, component: String, after: AfterSuspension,
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

    // MARK: - Suspended calls

    /// Parks the current event's call until its lookup answers; what follows the call runs on resume.
    private func suspend(call: Int32, token: Int64, then: AfterSuspension, value: Payload, component: String) {
        suspended.park(token, SuspendedWork<Payload>.Call(
            call: call, event: currentIndex, then: then, value: value, component: component,
            context: SuspensionContext(current: current, time: currentTime, watermarkBefore: currentWatermarkBefore,
                                           source: currentSource, format: currentFormat)))
    }

    /// At the end of a batch: resumes suspended calls as their answers arrive, then publishes the
    /// deferred results in input order.
    private func finishSuspended() {
        while suspended.hasCalls, let inbox = lookupInbox {
            for (token, answer) in inbox.wait() {
                guard let parked = suspended.take(token) else { continue }   // a call given up after a poisoning
                resume(parked, with: answer)
            }
        }
        for effect in suspended.drainEffects() {
            switch effect {
            case .sink(let sink, let bytes, let meta): sinkOut[sink].append(bytes, meta: meta)
            case .dead(let letter): dead.append(letter)
            case .route(let op, let input, let bytes, let context):
                restore(context)
                routeNow(bytes[...], to: op, input: input)
            }
        }
        suspended.reset()
    }

    private func restore(_ c: SuspensionContext) {
        current = c.current
        currentTime = c.time
        currentWatermarkBefore = c.watermarkBefore
        currentSource = c.source
        currentFormat = c.format
    }

    private func resume(_ parked: SuspendedWork<Payload>.Call, with answer: LuaResumeAnswer) {
        restore(parked.context)
        currentIndex = parked.event
        guard let engine else {   // cannot happen (a lost engine abandons its calls), but never drop the event
            deadLetter(component: parked.component, reason: "worker: the Lua engine was lost while this event's call was suspended",
                       detail: nil, event: current)
            suspended.finished(parked.event)
            _ = suspended.release(parked.event)
            return
        }
        var outputs: [LuaEventHandle] = []
        var truthy = false
        let result = engine.resume(parked.call, with: answer, meta: current.meta, truthy: &truthy, into: &outputs)
        live.append(contentsOf: outputs)
        var healthy = true
        switch result {
        case .success(.suspended(let call, let token)):
            var again = parked
            again.call = call
            suspended.park(token, again)
        case .failure(let failure):
            if case .outputs(let node) = parked.then { healthy = luaFailed(failure, component: parked.component, node: node) }
            else { healthy = luaFailed(failure, component: parked.component, node: nil) }
        case .success(.done):
            switch parked.then {
            case .outputs(let node):
                healthy = walkOutputs(outputs, of: node)
            case .filter(let node):
                var v = parked.value
                if truthy { healthy = walk(node, &v) }
            case .when(let sink):
                var v = parked.value
                if truthy { deliver(&v, to: sink) }
            }
        }
        suspended.finished(parked.event)
        releaseLive(event: parked.event)
        if let group = suspended.release(parked.event) { for h in group { engine.release(h) } }
        if !healthy { rebuildAfterPoison() }
    }

    /// Dead-letters the current event for a Lua failure. Returns false if the state is poisoned.
    private func luaFailed(_ failure: LuaFailure, component: String, node: Int?) -> Bool {
        if let node { rejected[node] += 1 }
        deadLetter(component: component, reason: failure.message, detail: failure.traceback, event: current)
        return !(engine?.isPoisoned ?? false)
    }

    /// `last`: nothing downstream of the node follows this sink, so a Lua value is encoded straight
    /// into the sink's batch (its bytes are not kept for later edges).
    private func deliver(_ value: inout Payload, to sink: Int, last: Bool = false) {
        sinkReceived[sink] += 1
        let format = plan.sinks[sink].format
        switch value {
        case .bytes(let b):
            append(b, to: sink)
        case .lua(_, let original?):
            append(original, to: sink)
        case .lua(let h, nil):
            guard let engine else { return }
            if last, format == .json, !suspended.deferring(currentIndex) {
                var failure: LuaFailure?
                let written = sinkOut[sink].appendWritten(meta: current.meta) { data in
                    if case .failure(let f) = engine.encodeJSON(h, into: &data) { failure = f; return false }
                    return true
                }
                if !written, let failure {
                    deadLetter(component: plan.sinks[sink].name, reason: failure.message, detail: failure.traceback, event: current)
                }
                return
            }
            var out: [UInt8] = []
            let result = format == .text ? engine.encodeText(h, into: &out) : engine.encodeJSON(h, into: &out)
            switch result {
            case .success:
                append(out[...], to: sink)
                if format == .json { value = .lua(h, original: out[...]) }
            case .failure(let failure):
                deadLetter(component: plan.sinks[sink].name, reason: failure.message, detail: failure.traceback, event: current)
            }
        }
    }

    /// A copy of the value's bytes for a tap, without side effects (a failed encoding samples nothing).
    private func sample(_ value: Payload) -> [UInt8]? {
        switch value {
        case .bytes(let b): return Array(b)
        case .lua(_, let original?): return Array(original)
        case .lua(let h, nil):
            guard let engine else { return nil }
            var out: [UInt8] = []
            let result = currentFormat == .text ? engine.encodeText(h, into: &out) : engine.encodeJSON(h, into: &out)
            if case .success = result { return out }
            return nil
        }
    }

    /// Taps on the inner nodes of a fused declarative chain: their output is never built on the
    /// event path, so a waiting tap runs the chain up to that node on the input.
    private func sampleFused(_ through: [Int], _ bytes: ArraySlice<UInt8>, _ taps: TapPoints) {
        for (j, n) in through.dropLast().enumerated() where taps.isWaiting(n) {
            guard let prefix = plan.fusedPrefixes[through[0]]?[j] else { continue }
            taps.offer(n) {
                var out: [UInt8] = []
                return bytes.withUnsafeBytes { prefix.run($0, into: &out, validate: true) } == .kept ? out : nil
            }
        }
    }

    /// Adds an event to a sink's batch, or to the deferred results while earlier events wait for lookups.
    private func append(_ bytes: ArraySlice<UInt8>, to sink: Int) {
        if suspended.deferring(currentIndex) {
            suspended.postpone(.sink(sink, Array(bytes), current.meta), for: currentIndex)
        } else {
            sinkOut[sink].append(bytes, meta: current.meta)
        }
    }

    /// The value as JSON bytes (encoding a Lua table once and remembering the result).
    private func bytes(_ value: inout Payload, component: String) -> ArraySlice<UInt8>? {
        switch value {
        case .bytes(let b): return b
        case .lua(_, let original?): return original
        case .lua(let h, nil):
            guard let engine else { return nil }
            var out: [UInt8] = []
            switch engine.encodeJSON(h, into: &out) {
            case .success:
                value = .lua(h, original: out[...])
                return out[...]
            case .failure(let failure):
                deadLetter(component: component, reason: failure.message, detail: failure.traceback, event: current)
                return nil
            }
        }
    }

    /// The value as a Lua handle (decoding bytes once and remembering the handle).
    private func handle(_ value: inout Payload, component: String, fields: LuaFieldSet? = nil) -> LuaEventHandle? {
        switch value {
        case .lua(let h, _): return h
        case .bytes(let b):
            guard let engine else { return nil }
            if currentFormat == .text {
                let h = b.withUnsafeBytes { engine.decodeText($0) }
                live.append(h)
                value = .lua(h, original: b)
                return h
            }
            switch b.withUnsafeBytes({ engine.decodeJSON($0, fields: fields) }) {
            case .success(let h):
                live.append(h)
                value = .lua(h, original: b)
                return h
            case .failure(let failure):
                deadLetter(component: component, reason: failure.message, detail: failure.traceback, event: current)
                return nil
            }
        }
    }

    private func deadLetter(component: String, reason: String, detail: String?, event: Event) {
        let letter = DeadLetter(component: component, reason: reason, detail: detail,
                                source: plan.nodes[currentSource].name, event: event)
        if suspended.deferring(currentIndex) { suspended.postpone(.dead(letter), for: currentIndex) } else { dead.append(letter) }
    }

    /// Sink receive counts for the last batch, indexed like `Plan.sinks`.
    var lastSinkCounts: [Int] { sinkReceived }
}
