import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceLua
import SluiceSpec

/// Checkpoint pieces without I/O: operator state written mid-stream and restored (into one worker
/// or re-split over two) gives the same results as an uninterrupted run; the file format rejects
/// every damaged copy; barrier alignment holds a channel until every other one has its barrier.
@Suite struct CheckpointStateTests {
    static let yaml = """
    sources:
      a: { stdin: {}, time: ts }
      b: { file: { path: /dev/null }, time: ts }
    transforms:
      j: { join: { left: { from: a, key: '{key}' }, right: { from: b, key: '{key}' }, within: 10s, unmatched: emit } }
      d: { dedup: { from: a, key: '{key}', within: 5s } }
      t: { aggregate: { from: a, key: '{key}', window: { tumbling: 10s }, reduce: { n: count, s: { sum: v }, u: { count_distinct: v }, l: { max: v } } } }
      s: { aggregate: { from: b, key: '{key}', window: { session: 3s }, reduce: { n: count, f: { first: v }, all: { collect: v } } } }
    sinks:
      o: { from: [j, d, t, s], stdout: {} }
    """

    static func worker() throws -> Worker {
        let spec = try Stateful.spec(yaml)
        let plan = Plan(spec, workers: 1)
        return try Worker(plan: plan, lua: LuaSettings(udfDir: spec.udfs.dir, limits: LuaLimits(instructions: 1_000_000, memoryBytes: 64 << 20),
                                                     version: 1, log: { _, _ in }))
    }

    static func spec(_ name: String) throws -> TransformSpec {
        try #require(try Stateful.spec(yaml).transforms.first { $0.name == name })
    }

    /// Events on keys k0..k7 with times out of order by up to 2 s; input 0 or 1 by parity of the key.
    static func events(_ n: Int, seed: UInt64) -> [KeyedEvent] {
        var rnd = SeededRandom(seed: seed)
        var t: Int64 = 1_700_000_000_000
        return (0..<n).map { i in
            t += Int64(rnd.int(0...900))
            let key = "k\(rnd.int(0...7))"
            let time = t - Int64(rnd.int(0...2000))
            let json = #"{"id":\#(i),"key":"\#(key)","ts":\#(time),"v":\#(rnd.int(0...5))}"#
            return KeyedEvent(key: StateKey(Array(key.utf8)), time: time, input: rnd.int(0...1), bytes: Array(json.utf8),
                              source: 0, position: Int64(i))
        }
    }

    /// Feeds events in batches of 10, advancing the watermark (max time - 3 s) after each; returns the outputs.
    static func feed<B: KeyedOperatorBehaviour>(_ b: inout B, _ events: ArraySlice<KeyedEvent>, worker: Worker,
                                                 keep: (StateKey) -> Bool = { _ in true }, end: Bool) -> [String] {
        var out: [String] = []
        var maxSeen = Int64.min
        for chunk in stride(from: events.startIndex, to: events.endIndex, by: 10) {
            var ctx = OperatorContext(name: "x", worker: worker)
            for e in events[chunk..<min(chunk + 10, events.endIndex)] {
                maxSeen = max(maxSeen, e.time)
                if keep(e.key) { b.process(e, &ctx) }
            }
            b.advance(to: maxSeen - 3000, &ctx)
            out += ctx.outputs.map { String(decoding: $0.bytes, as: UTF8.self) }
        }
        if end {
            var ctx = OperatorContext(name: "x", worker: worker)
            b.advance(to: EventTime.infinity, &ctx)
            out += ctx.outputs.map { String(decoding: $0.bytes, as: UTF8.self) }
        }
        return out
    }

    /// Runs `make()` over all events, and again with a checkpoint after `cut` events restored into
    /// one fresh operator and into two (keys split as two workers would own them).
    static func roundTrip<B: KeyedOperatorBehaviour>(_ make: () -> B, seed: UInt64) throws {
        let worker = try worker()
        let evs = events(400, seed: seed)
        var whole = make()
        let reference = feed(&whole, evs[...], worker: worker, end: true)
        #expect(reference.count > 20)
        for cut in [0, 137, 400] {
            var first = make()
            var before = feed(&first, evs[..<cut], worker: worker, end: false)
            var w = StateWriter()
            first.snapshot(into: &w)
            var after: [String] = []
            for lanes in [1, 2] {
                var parts: [String] = []
                for lane in 0..<lanes {
                    var restored = make()
                    var r = StateReader(w.bytes)
                    try restored.restore(from: &r) { $0.lane(of: lanes) == lane }
                    #expect(r.atEnd)
                    parts += feed(&restored, evs[cut...], worker: worker, keep: { $0.lane(of: lanes) == lane }, end: true)
                }
                if lanes == 1 { after = parts }
                #expect((before + parts).sorted() == reference.sorted(), "cut \(cut), \(lanes) worker(s)")
            }
            before += after
            #expect(before.sorted() == reference.sorted())
        }
    }

    static let budget = StateBudget(StateLimits(), lanes: 1)

    @Test func joinStateSurvivesACheckpoint() throws {
        guard case .join(let j) = try Self.spec("j").kind else { Issue.record("not a join"); return }
        try Self.roundTrip({ JoinOperator(spec: j, merge: nil, budget: Self.budget) }, seed: 21)
    }

    @Test func dedupStateSurvivesACheckpoint() throws {
        guard case .dedup(let d) = try Self.spec("d").kind else { Issue.record("not a dedup"); return }
        try Self.roundTrip({ DedupOperator(spec: d, budget: Self.budget) }, seed: 22)
    }

    @Test func windowAndSessionStateSurviveACheckpoint() throws {
        for name in ["t", "s"] {
            guard case .aggregate(let a) = try Self.spec(name).kind else { Issue.record("not an aggregate"); return }
            try Self.roundTrip({ AggregateOperator(spec: a, udf: nil, budget: Self.budget) }, seed: 23)
        }
    }

    static func sampleFile() -> CheckpointFile {
        let header = CheckpointHeader(id: 7, time: 1_700_000_000_000, pipeline: "p", udfVersion: 3, udfHash: "abc", lookups: ["t": "2 rows"],
                                      sources: [SourceCheckpoint(name: "s", kind: "file", file: FilePosition(path: "/x", offset: 10, line: 2, device: 1, inode: 2, head: "h"),
                                                                 events: 2, inputs: [InputMark(topic: nil, partition: -1, maxSeen: 5)])],
                                      restatement: nil)
        return CheckpointFile(header: header, sections: [StateSection(op: "j", lane: 0, bytes: Array(0..<200).map { UInt8($0) }),
                                                         StateSection(op: "j", lane: 1, bytes: [])])
    }

    @Test func theFileReadsBackAndEveryDamagedCopyIsRejected() throws {
        let file = Self.sampleFile()
        let bytes = try file.encoded()
        #expect(try CheckpointFile.decode(bytes) == file)
        for cut in [0, 1, 8, 20, bytes.count / 2, bytes.count - 9, bytes.count - 1] {
            #expect(throws: CheckpointError.self) { try CheckpointFile.decode(Array(bytes.prefix(cut))) }
        }
        for i in stride(from: 0, to: bytes.count, by: 7) {
            for bit in [0, 3, 7] {
                var flipped = bytes
                flipped[i] ^= UInt8(1 << bit)
                #expect(throws: CheckpointError.self) { try CheckpointFile.decode(flipped) }
            }
        }
        #expect(throws: CheckpointError.self) { try CheckpointFile.decode(bytes + [0]) }
    }

    @Test func theStoreSkipsDamagedCheckpointsAndPrunesOnlyOlderOnes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-store-\(UUID().uuidString)").path
        let store = CheckpointStore(dir: dir)
        for id in 1...4 {
            var f = Self.sampleFile()
            f.header.id = UInt64(id)
            try store.write(f)
        }
        store.prune(keep: 3)
        #expect(store.ids() == [2, 3, 4])
        // Crash between write and rename: a temporary file is left; it is never read.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/.ckpt-5.tmp"))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: store.path(4)))
        bytes[bytes.count / 2] ^= 1
        try bytes.write(to: URL(fileURLWithPath: store.path(4)))
        var reports: [String] = []
        #expect(store.latestValid { reports.append($0) }?.header.id == 3)
        #expect(reports.count == 1 && reports[0].contains("checkpoint 4 is unusable") && reports[0].contains("checksum"), "\(reports)")
        #expect(store.nextID() == 5)
        store.prune(keep: 3)
        #expect(!FileManager.default.fileExists(atPath: dir + "/.ckpt-5.tmp"))
    }

    static func batch(_ stage: Int, _ lane: Int, events: Int = 1, watermark: Int64 = 0, barrier: UInt64 = 0) -> KeyedBatch {
        let e = KeyedEvent(key: StateKey([1]), time: 0, input: 0, bytes: [], source: 0, position: 0)
        return KeyedBatch(channel: Channel(stage: stage, lane: lane), events: Array(repeating: e, count: events), watermark: watermark, barrier: barrier)
    }

    /// The actions as text: "p0.0" = process a batch of channel 0.0 (its event count after ':'), "s1" = snapshot 1.
    static func describe(_ actions: [BarrierAligner.Action]) -> [String] {
        actions.map {
            switch $0 {
            case .process(let b): return "p\(b.channel):\(b.events.count)"
            case .snapshot(let id): return "s\(id)"
            }
        }
    }

    @Test func alignmentHoldsAChannelPastItsBarrierUntilEveryChannelHasIt() {
        var a = BarrierAligner(channels: [Channel(stage: 0, lane: 0), Channel(stage: 0, lane: 1)])
        #expect(Self.describe(a.receive(Self.batch(0, 0, events: 2))) == ["p0.0:2"])
        #expect(Self.describe(a.receive(Self.batch(0, 0, events: 0, barrier: 1))) == [])
        #expect(Self.describe(a.receive(Self.batch(0, 0, events: 3))) == [], "held: after the barrier")
        #expect(Self.describe(a.receive(Self.batch(0, 1, events: 4))) == ["p0.1:4"], "before its barrier: processed")
        #expect(Self.describe(a.receive(Self.batch(-1, 0, events: 0))) == ["p-1.0:0"], "wake-ups pass")
        #expect(a.heldCount == 1)
        #expect(Self.describe(a.receive(Self.batch(0, 1, events: 0, barrier: 1))) == ["s1", "p0.0:3"])
        #expect(a.heldCount == 0)
        // A channel that ended (+infinity) is not waited for; its late barrier is ignored.
        #expect(Self.describe(a.receive(Self.batch(0, 1, events: 1, watermark: EventTime.infinity))) == ["p0.1:1"])
        #expect(Self.describe(a.receive(Self.batch(0, 0, events: 0, barrier: 2))) == ["s2"])
        #expect(Self.describe(a.receive(Self.batch(0, 1, events: 0, barrier: 2))) == [])
        // The next barrier can already be among the held batches.
        #expect(Self.describe(a.receive(Self.batch(0, 0, events: 0, barrier: 3))) == ["s3"])
    }

    @Test func aBarrierQueuedBehindHeldBatchesIsAlignedInTurn() {
        var a = BarrierAligner(channels: [Channel(stage: 0, lane: 0), Channel(stage: 1, lane: 0)])
        for b in [Self.batch(0, 0, barrier: 1), Self.batch(0, 0, events: 5), Self.batch(0, 0, barrier: 2), Self.batch(0, 0, events: 6)] {
            #expect(a.receive(b).isEmpty)
        }
        #expect(Self.describe(a.receive(Self.batch(1, 0, barrier: 1))) == ["s1", "p0.0:5"])
        #expect(Self.describe(a.receive(Self.batch(1, 0, events: 7))) == ["p1.0:7"])
        #expect(Self.describe(a.receive(Self.batch(1, 0, barrier: 2))) == ["s2", "p0.0:6"])
    }
}

extension CheckpointStateTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        let long = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Slicing-by-8 and the byte loop agree at every length.
        var c: UInt32 = 0xFFFF_FFFF
        var byByte: [UInt32] = []
        for b in long {
            for _ in 0..<1 {
                c ^= UInt32(b)
                for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            }
            byByte.append(c ^ 0xFFFF_FFFF)
        }
        #expect((1...long.count).allSatisfy { CRC32C.checksum(long, count: $0) == byByte[$0 - 1] })
    }
}
