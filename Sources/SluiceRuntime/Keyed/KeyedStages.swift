import Foundation
import Synchronization
import SluiceCore
import SluiceLua

/// The keyed stages of a pipeline: one bounded inbox and one thread per worker of every stateful
/// operator. Upstream workers publish per-destination batches into the inboxes (blocking when
/// full: backpressure); each stage worker owns the state and timers of the keys hashed to it,
/// advances its watermark (the minimum over its channels) and sends its results on.
final class KeyedStages: Sendable {
    let plan: Plan
    let inboxes: [[BoundedQueue<KeyedBatch>]]
    let board: WatermarkBoard
    let metrics: OperatorMetrics
    /// The watermark last sent on each channel to each operator, so unchanged ones are not resent.
    private let lastSent: Mutex<[Channel: Int64]> = Mutex([:])

    init(plan: Plan, board: WatermarkBoard, capacity: Int, bytes: Int = .max) {
        self.plan = plan
        self.board = board
        inboxes = plan.operators.map { op in (0..<op.parallelism).map { _ in BoundedQueue<KeyedBatch>(capacity: capacity, byteCapacity: bytes) } }
        metrics = OperatorMetrics(operators: plan.operators)
    }

    /// Sends a batch's events for stateful operators on, with the channel's watermark: to every
    /// worker of every operator the channel feeds (an empty batch when only the watermark moved).
    func publish(_ keyed: [[[KeyedEvent]]], from channel: Channel, feeding operators: [Int], watermark: Int64) {
        guard !operators.isEmpty else { return }
        let moved = lastSent.withLock { sent -> Bool in
            let old = sent[channel] ?? EventTime.missing
            if watermark > old { sent[channel] = watermark; return true }
            return false
        }
        for o in operators {
            for lane in 0..<plan.operators[o].parallelism {
                let events = o < keyed.count && lane < keyed[o].count ? keyed[o][lane] : []
                guard !events.isEmpty || moved else { continue }
                inboxes[o][lane].push(KeyedBatch(channel: channel, events: events, watermark: watermark),
                                      weight: max(1, events.count), bytes: events.reduce(0) { $0 + $1.bytes.count + ($1.partial?.bytes ?? 0) })
            }
        }
    }

    /// Sends checkpoint barrier `id` from `channel` to every worker of every operator it feeds,
    /// after everything the channel published before (the caller publishes in channel order).
    func publishBarrier(_ id: UInt64, from channel: Channel, feeding operators: [Int]) {
        for o in operators {
            for lane in 0..<plan.operators[o].parallelism {
                inboxes[o][lane].push(KeyedBatch(channel: channel, events: [], watermark: EventTime.missing, barrier: id), weight: 1)
            }
        }
    }

    /// Wakes every stage worker to recompute its watermark (a source became idle).
    func poke() {
        for lanes in inboxes {
            for inbox in lanes { _ = inbox.offer(KeyedBatch(channel: Channel(stage: -1, lane: 0), events: [], watermark: EventTime.missing)) }
        }
    }
}

extension Pipeline {
    /// The loop of worker `lane` of stateful operator `op`.
    func keyedStageLoop(_ stages: KeyedStages, op: Int, lane: Int, errors: ErrorList) {
        let spec = plan.operators[op]
        let inbox = stages.inboxes[op][lane]
        let worker: Worker
        do {
            worker = try Worker(plan: plan, lua: lua)
        } catch {
            options.log("error", "stage worker of '\(spec.name)' could not load its Lua code: \(error)")
            errors.append(error.description)
            stop()
            while let batch = inbox.pop() {
                let dead = batch.events.map {
                    DeadLetter(component: spec.name, reason: "worker could not load Lua code: \(error)", source: spec.name,
                               event: Event(bytes: $0.bytes, meta: $0.meta, position: $0.position))
                }
                publishDeadLetters(dead, acknowledgement: nil)
            }
            return
        }
        worker.taps = taps
        let budget = StateBudget(spec.spec.state, lanes: spec.parallelism)
        switch spec.spec.kind {
        case .join(let j):
            var b = JoinOperator(spec: j, merge: spec.udf, budget: budget)
            runStage(&b, stages, op: op, lane: lane, worker: worker)
        case .dedup(let d):
            var b = DedupOperator(spec: d, budget: budget)
            runStage(&b, stages, op: op, lane: lane, worker: worker)
        case .aggregate(let a):
            var b = AggregateOperator(spec: a, udf: spec.udf, budget: budget)
            runStage(&b, stages, op: op, lane: lane, worker: worker)
        default:
            break   // only stateful transforms become operators
        }
    }

    /// Loads this worker's share of the restored checkpoint: the keys that hash to it from every
    /// checkpointed worker of the operator, and its own watermarks when the layout is unchanged.
    private func restoreStage<B: KeyedOperatorBehaviour>(_ behaviour: inout B, _ tracker: inout WatermarkTracker, op: Int, lane: Int) {
        // With changelogs, state comes from the changelog of the partitions this replica is assigned.
        guard let restored, changelog == nil else { return }
        let spec = plan.operators[op]
        let sections = restored.sections.filter { $0.op == spec.name }
        let sameLayout = Set(sections.map(\.lane)) == Set(0..<spec.parallelism)
        let lanes = spec.parallelism
        let began = ContinuousClock.now
        for section in sections {
            var r = StateReader(section.bytes)
            do {
                try tracker.restore(from: &r, apply: sameLayout && section.lane == lane)
                try behaviour.restore(from: &r) { $0.lane(of: lanes) == lane }
            } catch {
                options.log("error", "transform '\(spec.name)': checkpoint \(restored.header.id) state of worker \(section.lane) is unreadable (\(error)); its keys start empty")
            }
        }
        let g = behaviour.gauges
        options.log("info", "transform '\(spec.name)' worker \(lane): restored \(g.keys) keys, \(g.stateBytes) state bytes in "
                    + String(format: "%.0f ms", CheckpointCoordinator.millis(ContinuousClock.now - began)))
    }

    /// A rebalance's instruction: drops the keys of revoked partitions, or replaces the keys of
    /// assigned partitions with their changelog state. Rebuilds the operator from its own snapshot
    /// without the dropped keys (timers are re-armed by `restore`).
    private func applyControl<B: KeyedOperatorBehaviour>(_ control: StateControl, _ behaviour: inout B, _ partitionOf: inout [StateKey: Int32],
                                                         empty: B, op: Int, lane: Int) {
        let name = plan.operators[op].name
        let (partitions, entries): (Set<Int32>, [ChangelogEntry]) = switch control {
        case .drop(let p): (p, [])
        case .restore(let p, let e): (p, e)
        }
        let began = ContinuousClock.now
        let before = behaviour.gauges.keys
        var dropped = false
        behaviour.forEachKey { k in if let p = partitionOf[k], partitions.contains(p) { dropped = true } }
        if dropped {
            var w = StateWriter()
            behaviour.snapshot(into: &w)
            var rebuilt = empty
            var r = StateReader(w.bytes)
            do {
                try rebuilt.restore(from: &r) { k in partitionOf[k].map { !partitions.contains($0) } ?? true }
                behaviour = rebuilt
            } catch {
                options.log("error", "transform '\(name)' worker \(lane): could not drop the keys of partitions \(partitions.sorted()): \(error)")
            }
            partitionOf = partitionOf.filter { !partitions.contains($0.value) }
        }
        var loaded = 0
        for e in entries {
            guard let value = e.value, let snapshot = Changelog.decode(value) else { continue }
            var r = StateReader(snapshot)
            do {
                try behaviour.restore(from: &r) { _ in true }
                partitionOf[e.key] = e.partition
                loaded += 1
            } catch {
                options.log("error", "transform '\(name)' worker \(lane): changelog record of key '\(e.key.text)' (partition \(e.partition)) is unreadable (\(error)); the key starts empty")
            }
        }
        let ms = String(format: "%.0f ms", CheckpointCoordinator.millis(ContinuousClock.now - began))
        switch control {
        case .drop:
            options.log("info", "transform '\(name)' worker \(lane): partitions \(partitions.sorted()) revoked: dropped \(before - behaviour.gauges.keys) keys in \(ms)")
        case .restore:
            options.log("info", "transform '\(name)' worker \(lane): partitions \(partitions.sorted()) assigned: restored \(loaded) keys from the changelog in \(ms)")
        }
    }

    /// Specialized per operator type, so the per-event calls are direct.
    private func runStage<B: KeyedOperatorBehaviour>(_ behaviour: inout B, _ stages: KeyedStages, op: Int, lane: Int, worker: Worker) {
        let spec = plan.operators[op]
        let inbox = stages.inboxes[op][lane]
        var tracker = WatermarkTracker(channels: spec.channels)
        let myChannel = Channel(stage: spec.stage, lane: lane)
        let downstream = plan.stageOperators[op]
        let live = lua.live
        var lastFullReport = -Double.infinity
        var fullSinceReport = 0
        var aligner = BarrierAligner(channels: spec.channels)
        var epoch = checkpoint?.firstAck
        /// Set at a snapshot: the next batch pays the copy-on-write copy of the tables (logged at debug).
        var afterSnapshot: (id: UInt64, at: ContinuousClock.Instant)?
        /// With a changelog: the input partition of each key's events (its changelog partition).
        let changelog = changelog.flatMap { $0.lanes[spec.name] != nil ? $0 : nil }
        var partitionOf: [StateKey: Int32] = [:]
        let empty = behaviour
        restoreStage(&behaviour, &tracker, op: op, lane: lane)
        while let (popped, code) = inbox.pop(stamping: { live?.current }) {
            if let control = popped.control {
                applyControl(control, &behaviour, &partitionOf, empty: empty, op: op, lane: lane)
                stages.metrics.update(op, lane: lane, gauges: behaviour.gauges, late: 0, deduplicated: 0, stateFull: 0)
                continue
            }
            for action in checkpoint == nil ? [.process(popped)] : aligner.receive(popped) {
                let batch: KeyedBatch
                switch action {
                case .process(let b): batch = b
                case .snapshot(let id):
                    // Copies share their storage (copy-on-write): the state is encoded on the checkpoint
                    // encoder's thread while this worker goes on; its first change of a table copies it.
                    if changelog != nil, partitionOf.count > 2 * behaviour.gauges.keys + 1024 {
                        var held: [StateKey: Int32] = [:]
                        behaviour.forEachKey { k in if let p = partitionOf[k] { held[k] = p } }
                        partitionOf = held
                    }
                    let frozen = behaviour, frozenTracker = tracker, frozenPartitions = partitionOf
                    if let checkpoint {
                        let name = spec.name
                        epoch = checkpoint.snapshotted(id, op: spec.name, lane: lane) {
                            var w = StateWriter()
                            frozenTracker.snapshot(into: &w)
                            frozen.snapshot(into: &w)
                            if let changelog {
                                var entries: [(key: StateKey, partition: Int32?, snapshot: [UInt8])] = []
                                frozen.snapshotEachKey { key, bytes in entries.append((key, frozenPartitions[key], bytes)) }
                                changelog.stage(id, op: name, lane: lane, entries: entries)
                            }
                            return w.bytes
                        }
                    }
                    stages.publishBarrier(id, from: myChannel, feeding: downstream)
                    afterSnapshot = (id, .now)
                    continue
                }
                worker.adoptCode(code)
                var ctx = OperatorContext(name: spec.name, worker: worker)
                let checkLate = batch.channel.stage > 0 && tracker.mark(batch.channel) != EventTime.missing
                let mark = tracker.mark(batch.channel)
                batch.events.withUnsafeBufferPointer { events in   // borrowed: no copy (and retain) per event
                    for i in events.indices {
                        if checkLate, events[i].time < mark {
                            ctx.late += 1
                            ctx.deadLetter(events[i], reason: "late", detail: "event time \(events[i].time) is behind the watermark \(mark) of its input (stage \(batch.channel.stage) worker \(batch.channel.lane))")
                            continue
                        }
                        if changelog != nil, let p = events[i].meta?.partition, partitionOf[events[i].key] != p {
                            partitionOf[events[i].key] = p
                        }
                        behaviour.process(events[i], &ctx)
                    }
                }
                if batch.channel.stage >= 0 { tracker.update(batch.channel, batch.watermark) }
                if let w = tracker.advance(board: stages.board) { behaviour.advance(to: w, &ctx) }
                if let a = afterSnapshot, !batch.events.isEmpty {
                    options.log("debug", "transform '\(spec.name)' worker \(lane): first batch after checkpoint \(a.id) took "
                                + String(format: "%.1f ms", CheckpointCoordinator.millis(ContinuousClock.now - a.at)) + " (copy-on-write of the state)")
                    afterSnapshot = nil
                }
                let received = batch.events.reduce(0) { $0 + ($1.partial?.events ?? 1) }
                stats.add(spec.name) {
                    $0.received &+= received
                    $0.deadLettered &+= ctx.deadLetters.count
                    $0.dropped &+= ctx.deduplicated
                }
                let output = worker.processOutputs(ctx.outputs, of: op, code: nil)
                stats.mergeLuaCounters(worker.batchLuaCounters)
                publishDeadLetters(ctx.deadLetters, acknowledgement: epoch)
                epoch?.hold()
                publish(output, acknowledgement: epoch)
                stages.publish(output.keyed, from: myChannel, feeding: downstream, watermark: tracker.current)
                stages.metrics.update(op, lane: lane, gauges: behaviour.gauges, late: ctx.late,
                                      deduplicated: ctx.deduplicated, stateFull: ctx.stateFull)
                fullSinceReport += ctx.stateFull
                if fullSinceReport > 0, Date.timeIntervalSinceReferenceDate - lastFullReport >= 10 {
                    // Reported at most every 10 s per worker; every such event is also dead-lettered and counted.
                    let g = behaviour.gauges
                    options.log("warn", "transform '\(spec.name)' (worker \(lane)) is at its state limit (\(g.keys) keys, \(g.stateBytes) bytes): \(fullSinceReport) event(s) dead-lettered state_full")
                    lastFullReport = Date.timeIntervalSinceReferenceDate
                    fullSinceReport = 0
                }
            }
        }
        // Closed: every input has ended (their +infinity watermarks normally fired everything already).
        // Stopped with checkpoints on: the state stays for the next start (the last checkpoint holds it).
        if checkpoint != nil && stopFlag.isSet { return }
        var ctx = OperatorContext(name: spec.name, worker: worker)
        behaviour.advance(to: EventTime.infinity, &ctx)
        if !ctx.outputs.isEmpty || !ctx.deadLetters.isEmpty {
            let output = worker.processOutputs(ctx.outputs, of: op, code: nil)
            publishDeadLetters(ctx.deadLetters, acknowledgement: epoch)
            epoch?.hold()
            publish(output, acknowledgement: epoch)
            stages.publish(output.keyed, from: myChannel, feeding: downstream, watermark: EventTime.infinity)
        }
        stages.metrics.update(op, lane: lane, gauges: behaviour.gauges, late: 0, deduplicated: 0, stateFull: 0)
    }
}
