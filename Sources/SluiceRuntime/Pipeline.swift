import Foundation
import Synchronization
import SluiceCore
import SluiceSpec
import SluiceLua
import SluiceKafka

/// A running pipeline: source threads feed a bounded work queue, N workers run the fused stateless
/// transforms, and every sink drains its own bounded queue on its own thread.
/// `stop()` (SIGINT/SIGTERM) stops the sources; everything already read is processed and written.
public final class Pipeline: Sendable {
    public static let deadLetterName = "dead_letter"

    let spec: PipelineSpec
    let plan: Plan
    let options: RunOptions
    let stopFlag = StopFlag()
    public let stats = PipelineStats()
    let sources: [any EventSource]
    let sinkRunners: [SinkRunner]
    let deadLetterRunner: SinkRunner
    let workerCount: Int
    let lua: LuaSettings
    /// Hot reload of UDFs (nil when `udfs.reload: off` or the pipeline has no Lua).
    let reloader: Reloader?
    /// `settings.admin`: /metrics, /health, /ready, POST /reload.
    let admin: AdminServer?
    let phase = PipelinePhase()
    /// Source watermarks, idleness and drift (used when the pipeline has stateful transforms).
    let board: WatermarkBoard
    /// Components and edges, for `GET /topology` and the live page.
    let topology: Topology
    /// `GET /tap` sampling points, one per component of `topology` in its order (nil without `settings.admin`).
    let taps: TapPoints?
    /// `settings.checkpoint`: takes checkpoints during the run (nil when off, and for `sluice test`).
    let checkpoint: CheckpointCoordinator?
    /// The checkpoint this run resumed from.
    let restored: CheckpointFile?
    /// After `sluice rewind`: re-emitted events are marked while it lasts.
    let restatement: Restatement
    /// The stateful operators' changelog topics (Kafka-fed pipelines with checkpoints; nil otherwise).
    let changelog: Changelog?

    public init(spec: PipelineSpec, options: RunOptions = RunOptions()) throws(PipelineError) {
        self.spec = spec
        self.options = options
        let workerCount = max(1, spec.settings.workers ?? ProcessInfo.processInfo.activeProcessorCount)
        self.workerCount = workerCount
        let plan = Plan(spec, workers: workerCount)
        self.plan = plan
        let topology = Topology(spec: spec, plan: plan, workers: workerCount)
        self.topology = topology
        let taps = spec.settings.admin != nil && options.sourceOverrides == nil ? TapPoints(names: topology.nodes.map(\.name)) : nil
        self.taps = taps
        // Sources that feed a common stateful transform must not drift apart by more than max_drift.
        let peers = plan.sourceOperators.enumerated().map { s, ops in
            plan.sourceOperators.indices.filter { $0 != s && !Set(plan.sourceOperators[$0]).isDisjoint(with: ops) }
        }
        self.board = WatermarkBoard(idleAfter: spec.sources.map(\.time.idle), peers: peers, maxDrift: spec.settings.maxDrift)
        var lua = LuaSettings(udfDir: spec.udfs.dir,
                              limits: LuaLimits(instructions: spec.udfs.instructionLimit, memoryBytes: spec.udfs.memoryLimit),
                              version: 1, log: options.log)
        if !spec.lookups.isEmpty { lua.lookups = try LookupRegistry(spec.lookups, log: options.log) }

        let maxEventBytes = spec.settings.maxEventBytes ?? options.maxEventBytes
        let restore = spec.settings.checkpoint.flatMap { options.sourceOverrides == nil ? RestorePoint.load($0, log: options.log) : nil }
        restored = restore?.file
        let restatement = Restatement(label: restore?.marker?.restatement, until: restore?.marker?.until ?? [])
        self.restatement = restatement
        let changelog = restore == nil ? nil : Self.makeChangelog(spec, plan: plan, restore: restore, log: options.log)
        self.changelog = changelog
        var sources: [any EventSource] = []
        // Kafka sources that share brokers and group are read by one consumer (SharedKafkaConsumers).
        var kafkaSets: [Int: (set: KafkaSourceSet, member: Int)] = [:]
        if options.sourceOverrides == nil {
            for indices in SharedKafkaConsumers.sets(in: spec) {
                let members = indices.compactMap { i -> (name: String, spec: KafkaSourceSpec)? in
                    if case .kafka(let k) = spec.sources[i].kind { return (spec.sources[i].name, k) } else { return nil }
                }
                do {
                    let set = try KafkaSourceSet(members: members, pipeline: spec.name,
                                                 // With changelogs, the group's committed offsets go with the changelog's state.
                                                 restored: changelog != nil ? [] : indices.compactMap { restore?.position(of: spec.sources[$0].name) },
                                                 startTime: restore?.marker?.time, log: options.log)
                    for (m, i) in indices.enumerated() { kafkaSets[i] = (set, m) }
                } catch {
                    throw PipelineError(message: "\(spec.sources[indices[0]].location): \(error)")
                }
            }
        }
        for (sourceIndex, source) in spec.sources.enumerated() {
            if let overrides = options.sourceOverrides {
                sources.append(MemorySource(events: overrides[source.name] ?? []))
                continue
            }
            switch source.kind {
            case .file(let path, let follow):
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw PipelineError(message: "\(source.location): source '\(source.name)': cannot read \(path)", kind: .input)
                }
                sources.append(FileSource(name: source.name, path: path, follow: follow, maxLineBytes: maxEventBytes.saturatingAdd(1),
                                          start: restore?.position(of: source.name)?.file, log: options.log))
            case .stdin:
                sources.append(StdinSource(name: source.name, maxLineBytes: maxEventBytes.saturatingAdd(1)))
            case .generate(let count, let rate, let udf):
                sources.append(GenerateSource(name: source.name, count: count, ratePerSecond: rate,
                                              module: udf.module, function: udf.function, lua: lua))
            case .kafka:
                guard let (set, member) = kafkaSets[sourceIndex] else {
                    throw PipelineError(message: "\(source.location): source '\(source.name)': no consumer was made for it")
                }
                sources.append(KafkaSource(name: source.name, consumer: set, member: member, checkpointing: restore != nil))
            }
        }
        self.sources = sources

        func output(_ sink: SinkSpec) throws(PipelineError) -> any SinkOutput {
            if options.captureSinks { return MemoryOutput() }
            do {
                switch sink.kind {
                case .stdout: return DescriptorOutput(sink: sink.name, fd: 1)
                case .stderr: return DescriptorOutput(sink: sink.name, fd: 2)
                case .file(let path): return try DescriptorOutput(sink: sink.name, path: path)
                case .kafka(let kafka): return try KafkaOutput(sink: sink.name, spec: kafka, restatement: restatement,
                                                               lingerMs: spec.settings.linger, log: options.log)
                case .http(let http): return try HTTPOutput(sink: sink.name, spec: http)
                case .memcached(let mc): return try MemcachedOutput(sink: sink.name, spec: mc)
                }
            } catch {
                throw PipelineError(message: "\(sink.location): \(error)")
            }
        }
        var runners: [SinkRunner] = []
        for (i, sink) in spec.sinks.enumerated() {
            runners.append(SinkRunner(name: sink.name, queue: sink.queue, bytes: spec.settings.queueBytes, output: Self.retrying(try output(sink), sink, options),
                                      coalesce: Self.coalescing(sink), tap: taps.map { ($0, plan.nodes.count + i) }))
        }
        let deadLetterTap = taps.map { ($0, plan.nodes.count + spec.sinks.count) }
        self.sinkRunners = runners
        // `dead_letter: { queue: { capacity } }` is honoured; it always blocks (never drops).
        let dlqQueue = QueueSpec(capacity: spec.deadLetter?.queue.capacity ?? spec.settings.queueCapacity * 4, whenFull: .block)
        // Dead letters that fail are retried a few times with backoff before the run gives up on them.
        let deadLetterBytes = spec.settings.queueBytes.multipliedReportingOverflow(by: 4).partialValue
        if let dl = spec.deadLetter {
            let inner = try output(dl)
            let retrying = dl.retry.map { RetryingOutput(inner, backoff: Backoff($0), giveUpAfterExhaustion: true) } ?? RetryingOutput(deadLetter: inner)
            deadLetterRunner = SinkRunner(name: Self.deadLetterName, queue: dlqQueue, bytes: deadLetterBytes, output: retrying, tap: deadLetterTap)
        } else {
            deadLetterRunner = SinkRunner(name: Self.deadLetterName, queue: dlqQueue, bytes: deadLetterBytes,
                                          output: RetryingOutput(deadLetter: options.captureSinks ? MemoryOutput() : DescriptorOutput(sink: Self.deadLetterName, fd: 2)),
                                          tap: deadLetterTap)
        }

        if let a = spec.settings.admin, options.sourceOverrides == nil {
            admin = try AdminServer(host: a.host, port: a.port)
        } else {
            admin = nil
        }

        // Fail before starting if any Lua cannot load, with its file:line.
        do { _ = try Worker(plan: plan, lua: lua) }
        catch { throw PipelineError(message: error.description) }

        // Last, so that a failure above leaves no UDF snapshot behind.
        if options.sourceOverrides == nil, !plan.luaCode.isEmpty {
            do {
                reloader = try Reloader(mode: spec.udfs.reload, udfDir: spec.udfs.dir, plan: plan, lua: lua)
            } catch {
                throw PipelineError(message: "cannot snapshot the UDF directory \(spec.udfs.dir): \(error)")
            }
            lua.live = reloader?.live
        } else {
            reloader = nil
        }
        self.lua = lua
        if let c = spec.settings.checkpoint, restore != nil {
            do { try CheckpointStore(dir: c.dir).makeDirectory() }
            catch { throw PipelineError(message: "settings.checkpoint: \(error)", kind: .input) }
            checkpoint = CheckpointCoordinator(settings: c, pipeline: spec.name, sources: sources.count,
                                               lanes: plan.operators.reduce(0) { $0 + $1.parallelism },
                                               restatement: restatement, log: options.log)
        } else {
            checkpoint = nil
        }
    }

    /// The sink's output behind its `retry:` policy (none when it allows no retries).
    static func retrying(_ output: any SinkOutput, _ sink: SinkSpec, _ options: RunOptions) -> any SinkOutput {
        let retry = sink.effectiveRetry
        guard retry.max > 0, !options.captureSinks else { return output }
        let log = options.log, name = sink.name
        return RetryingOutput(output, backoff: Backoff(retry)) { log("warning", "sink '\(name)': \($0)") }
    }

    /// HTTP sinks merge queued batches up to `batch` events, waiting at most `linger`.
    static func coalescing(_ sink: SinkSpec) -> (events: Int, linger: Duration)? {
        guard case .http(let h) = sink.kind else { return nil }
        return (h.batch, .milliseconds(h.linger))
    }

    /// Asks the sources to stop; the run then drains and returns. Safe to call from any thread, more than once.
    public func stop() {
        stopFlag.set()
        if phase.current == .running { phase.set(.draining) }
    }

    /// Sinks (and stateful stages) that still hold events, with how many are queued: what a forced
    /// exit leaves unacknowledged.
    public func heldEvents() -> [(name: String, events: Int)] {
        var out: [(name: String, events: Int)] = []
        for r in sinkRunners + [deadLetterRunner] {
            let n = r.queue.currentWeight
            if n > 0 || r.isWriting { out.append((r.name, n)) }
        }
        return out
    }

    /// The admin endpoint's port, if `settings.admin` is set.
    public var adminPort: Int? { admin?.port }

    /// Reloads the UDFs now (SIGHUP). Ignored when `udfs.reload` is `off`.
    public func reload() {
        if let reloader { reloader.requestReload() } else { options.log("info", "SIGHUP ignored: udfs.reload is off") }
    }

    /// Runs until every source has ended (or `stop()`), then drains all queues and flushes all sinks.
    public func run() -> RunReport {
        let errors = ErrorList()
        let work = BoundedQueue<Batch>(capacity: workerCount * 4, byteCapacity: spec.settings.queueBytes)
        let sequencers = spec.sources.map { _ in Sequencer(limit: workerCount * 4) }

        let sinkGroup = DispatchGroup()
        let dlq = deadLetterRunner
        let stats = stats
        let log = options.log
        startThread("sluice-dead-letter", sinkGroup) { [self] in
            // A dead letter that cannot be written (after retries) keeps its acknowledgement: its offset is
            // never committed. The run then fails loudly and stops, so unacknowledged batches cannot pile up.
            dlq.drain(stats: stats, log: log, releaseFailed: false) { _, failures in
                let message = "sink '\(Self.deadLetterName)': \(failures.count) dead letter(s) could not be written "
                    + "(\(failures[0].reason)); their events are lost to this run and stay unacknowledged; stopping the pipeline"
                log("error", message)
                errors.append(message)
                self.stop()
            }
        }
        let sinksDone = DispatchGroup()
        for runner in sinkRunners {
            startThread("sluice-sink-\(runner.name)", sinksDone) {
                runner.drain(stats: stats, log: log) { batch, failures in
                    Self.deadLetter(batch, only: failures, component: runner.name, to: dlq, stats: stats)
                }
            }
        }

        // Keyed stages: started before the stateless workers that feed them.
        let stages = KeyedStages(plan: plan, board: board, capacity: spec.settings.queueCapacity * 4, bytes: spec.settings.queueBytes)
        let operatorsDone = plan.operators.map { _ in DispatchGroup() }
        for (o, op) in plan.operators.enumerated() {
            for lane in 0..<op.parallelism {
                startThread("sluice-\(op.name)-\(lane)", operatorsDone[o]) { [self] in
                    self.keyedStageLoop(stages, op: o, lane: lane, errors: errors)
                }
            }
        }
        let tickerStop = StopFlag()
        let tickerDone = DispatchGroup()
        if plan.isStateful {
            let board = board
            startThread("sluice-idle", tickerDone) {
                while !tickerStop.isSet {
                    usleep(100_000)
                    if board.markIdle() { stages.poke() }
                }
            }
        }

        let workersDone = DispatchGroup()
        for i in 0..<workerCount {
            startThread("sluice-worker-\(i)", workersDone) { [self] in
                self.workerLoop(work: work, sequencers: sequencers, stages: stages, errors: errors)
            }
        }

        let adminDone = DispatchGroup()
        let adminStop = StopFlag()
        if let admin {
            let rates = RateMeter()
            var kafka: [Int: KafkaConsumerClient] = [:]
            for (i, source) in sources.enumerated() { if let k = source as? KafkaSource { kafka[i] = k.client } }
            let report = TopologyReport(pipeline: spec.name, topology: topology, stats: stats, rates: rates, operators: stages.metrics,
                                        work: work, inboxes: stages.inboxes, sinks: sinkRunners + [deadLetterRunner], reloader: reloader,
                                        reloadMode: reloader == nil ? "off" : spec.udfs.reload.rawValue, kafka: kafka, phase: phase)
            let routes = AdminRoutes(pipeline: spec.name, stats: stats, operators: stages.metrics, sinks: sinkRunners + [deadLetterRunner],
                                     reloader: reloader, phase: phase, lookups: lua.lookups, topology: report, taps: taps,
                                     checkpoints: checkpoint)
            startThread("sluice-admin", adminDone) {
                admin.serve(stopped: { adminStop.isSet }, tick: { rates.observe(stats.snapshot) }) { routes.respond($0) }
            }
            options.log("info", "admin endpoint on http://\(spec.settings.admin?.host ?? ""):\(admin.port) (/ /topology /tap /metrics /health /ready POST /reload)")
        }
        let reloadDone = DispatchGroup()
        if let reloader { startThread("sluice-reload", reloadDone) { reloader.run() } }
        let lookupsDone = DispatchGroup()
        if options.sourceOverrides == nil { lua.lookups?.start(lookupsDone) }

        let firstEpoch = checkpoint?.firstAck
        let outlets = sources.enumerated().map { index, source in
            let sourceSpec = spec.sources[index]
            let timing = plan.sourceOperators[index].isEmpty ? nil
                : SourceTiming(index: index, spec: sourceSpec.time, format: sourceSpec.format, board: board, stop: stopFlag, inputs: source.inputs)
            return SourceOutlet(source: index, work: work, timing: timing, deadLetters: { [self] in sourceDeadLetters($0) },
                                restored: restored?.header.sources.first { $0.name == sourceSpec.name }, epoch: firstEpoch)
        }
        let checkpointDone = DispatchGroup()
        if let checkpoint { startCheckpoints(checkpoint, outlets: outlets, sequencers: sequencers, stages: stages, group: checkpointDone) }
        if checkpoint != nil { followPartitions(changelog, stages: stages, outlets: outlets) }
        let sourcesDone = DispatchGroup()
        for (index, source) in sources.enumerated() {
            let name = spec.sources[index].name
            let batchSize = spec.settings.batchSize
            let stopFlag = stopFlag
            let outlet = outlets[index]
            let keepState = checkpoint != nil
            startThread("sluice-source-\(name)", sourcesDone) {
                do {
                    try source.run(batchSize: batchSize, stop: stopFlag, outlet: outlet)
                } catch {
                    log("error", "\(error)")
                    errors.append("\(error)")
                }
                // Stopped with checkpoints on: state is kept for the next start, not flushed.
                outlet.finish(flush: !(keepState && stopFlag.isSet))
            }
        }

        if !stopFlag.isSet { phase.set(.running) }
        sourcesDone.wait()
        phase.set(.draining)
        if let checkpoint {
            if let id = checkpoint.finalCheckpoint(timeout: Double(spec.settings.grace) / 1000) {
                log("info", "checkpoint \(id) taken at \(stopFlag.isSet ? "stop" : "the end of input")")
            } else {
                log("error", "the last checkpoint did not complete; the next start resumes from the one before")
            }
            checkpoint.stop()
            checkpointDone.wait()
        }
        work.close()
        workersDone.wait()
        // Keyed stages drain in dependency order: every input of a stage has ended before it closes.
        for o in plan.operatorOrder {
            for inbox in stages.inboxes[o] { inbox.close() }
            operatorsDone[o].wait()
        }
        tickerStop.set()
        tickerDone.wait()
        reloader?.stop()
        for runner in sinkRunners { runner.queue.close() }
        sinksDone.wait()
        deadLetterRunner.queue.close()
        sinkGroup.wait()
        // Everything is written and acknowledged: sources may commit and close.
        for source in sources { source.finish() }
        changelog?.close()
        reloadDone.wait()
        lua.lookups?.stop()
        lookupsDone.wait()
        phase.set(.stopped)
        adminStop.set()
        adminDone.wait()

        var captured: [String: [[UInt8]]] = [:]
        for runner in sinkRunners + [deadLetterRunner] {
            let output = (runner.output as? RetryingOutput)?.inner ?? runner.output
            if let memory = output as? MemoryOutput { captured[runner.name] = memory.events }
        }
        return RunReport(counts: stats.snapshot, udfCounters: stats.udfCounters, captured: captured, errors: errors.all,
                         udfVersion: reloader?.live.current.number ?? 1, reloadsRejected: reloader?.counts.rejected ?? 0,
                         operators: stages.metrics.totals.map { OperatorSummary(name: $0.name, figures: $0.figures) })
    }

    private func workerLoop(work: BoundedQueue<Batch>, sequencers: [Sequencer], stages: KeyedStages, errors: ErrorList) {
        let worker: Worker
        do {
            worker = try Worker(plan: plan, lua: lua)
        } catch {
            // The code loaded when the pipeline was built; if it cannot load now, fail loudly and lose nothing.
            options.log("error", "worker could not load its Lua code: \(error)")
            errors.append(error.description)
            stop()
            while let batch = work.pop() {
                let dead = batch.events.map {
                    DeadLetter(component: spec.sources[batch.source].name, reason: "worker could not load Lua code: \(error)",
                               source: spec.sources[batch.source].name, event: $0)
                }
                sequencers[batch.source].complete(batch.sequence) { [self] in
                    publishDeadLetters(dead, acknowledgement: batch.acknowledgement)
                    batch.acknowledgement?.release()
                }
            }
            return
        }
        worker.maxEventBytes = spec.settings.maxEventBytes ?? options.maxEventBytes
        worker.taps = taps
        let live = lua.live
        while let (batch, code) = work.pop(stamping: { live?.current }) {
            let output = worker.process(batch, code: code)
            sequencers[batch.source].complete(batch.sequence) { [self] in
                publish(output, acknowledgement: batch.acknowledgement)
                for (op, n) in output.late.enumerated() where n > 0 { stages.metrics.addLate(op, n) }
                stages.publish(output.keyed, from: Channel(stage: 0, lane: batch.source),
                               feeding: plan.sourceOperators[batch.source], watermark: batch.watermark)
            }
            stats.mergeLuaCounters(worker.batchLuaCounters)
        }
    }

    /// Hands a worker's results to the sinks. Each destination that takes events holds the batch's
    /// acknowledgement until it has written them; dropping (`drop_newest`) counts as done.
    func publish(_ output: WorkerOutput, acknowledgement ack: Acknowledgement?) {
        stats.merge(output.counts)
        for (i, produced) in output.sinks.enumerated() where !produced.isEmpty {
            let runner = sinkRunners[i]
            var batch = produced
            if let ack { ack.hold(); batch.acks = [ack] }
            switch runner.enqueue(batch) {
            case .accepted:
                stats.add(runner.name) { $0.received += batch.count }
            case .dropped:
                stats.add(runner.name) { $0.dropped += batch.count }
                batch.releaseAcks()
            case .rejected:
                let all = (0..<batch.count).map { DeliveryFailure(index: $0, reason: "sink '\(runner.name)' queue full") }
                Self.deadLetter(batch, only: all, component: runner.name, to: deadLetterRunner, stats: stats)
                batch.releaseAcks()
            }
        }
        publishDeadLetters(output.deadLetters, acknowledgement: ack)
        ack?.release()
    }

    func publishDeadLetters(_ dead: [DeadLetter], acknowledgement ack: Acknowledgement?) {
        guard !dead.isEmpty else { return }
        var batch = SinkBatch()
        for d in dead { batch.append(d.encoded()) }
        if let ack { ack.hold(); batch.acks = [ack] }
        _ = deadLetterRunner.enqueue(batch)
        stats.add(Self.deadLetterName) { $0.received += dead.count }
    }

    /// Sends the `failures` of a sink batch to the dead letter sink, which takes over holding the batch's
    /// acknowledgements (the caller still releases its own).
    static func deadLetter(_ batch: SinkBatch, only failures: [DeliveryFailure], component: String,
                           to dlq: SinkRunner, stats: PipelineStats) {
        var out = SinkBatch()
        for f in failures {
            out.append(DeadLetter(component: component, reason: f.reason, event: Event(bytes: Array(batch.payload(f.index)))).encoded())
        }
        for a in batch.acks { a.hold() }
        out.acks = batch.acks
        stats.add(component) { $0.deadLettered += failures.count }
        _ = dlq.enqueue(out)
        stats.add(deadLetterName) { $0.received += out.count }
    }
}

/// Errors collected from threads during a run.
final class ErrorList: Sendable {
    private let items = Mutex<[String]>([])
    func append(_ s: String) { items.withLock { $0.append(s) } }
    var all: [String] { items.withLock { $0 } }
}

/// Starts a named thread with a stack large enough for deep Lua and JSON work.
func startThread(_ name: String, _ group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
    group.enter()
    let thread = Thread {
        body()
        group.leave()
    }
    thread.name = name
    thread.stackSize = 16 << 20
    thread.start()
}
