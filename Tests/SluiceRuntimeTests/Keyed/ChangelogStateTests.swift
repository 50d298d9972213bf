import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceSpec

/// Changelog pieces without I/O: each operator's per-key records (`snapshotEachKey`) read back by
/// `restore` give the same results as an uninterrupted run, and a key's record changes only when
/// the key does; the ledger routes records to the key's input partition, writes tombstones for keys
/// gone, and writes (and commits) only partitions held throughout a checkpoint.
@Suite struct ChangelogStateTests {
    typealias Fixture = CheckpointStateTests

    /// Every key's record of `b`, through the changelog value format.
    static func records<B: KeyedOperatorBehaviour>(_ b: B) -> [StateKey: [UInt8]] {
        var out: [StateKey: [UInt8]] = [:]
        b.snapshotEachKey { key, bytes in out[key] = Changelog.encode(bytes) }
        return out
    }

    /// Feeds `cut` events, writes every key's record, restores the records into fresh operators (one
    /// worker, and two owning the keys by hash) and feeds the rest: the outputs are the uninterrupted run's.
    static func roundTrip<B: KeyedOperatorBehaviour>(_ make: () -> B, seed: UInt64) throws {
        let worker = try Fixture.worker()
        let evs = Fixture.events(400, seed: seed)
        var whole = make()
        let reference = Fixture.feed(&whole, evs[...], worker: worker, end: true)
        for cut in [0, 137, 290] {
            var first = make()
            let before = Fixture.feed(&first, evs[..<cut], worker: worker, end: false)
            let recs = records(first)
            #expect(recs.count == first.gauges.keys)
            for lanes in [1, 2] {
                var after: [String] = []
                for lane in 0..<lanes {
                    var restored = make()
                    for (key, value) in recs where key.lane(of: lanes) == lane {
                        var alone = make()
                        var r1 = StateReader(try #require(Changelog.decode(value)))
                        try alone.restore(from: &r1) { _ in true }
                        #expect(r1.atEnd && alone.gauges.keys == 1, "the record of \(key.text) holds that key only")
                        var r = StateReader(try #require(Changelog.decode(value)))
                        try restored.restore(from: &r) { _ in true }
                    }
                    after += Fixture.feed(&restored, evs[cut...], worker: worker, keep: { $0.lane(of: lanes) == lane }, end: true)
                }
                #expect((before + after).sorted() == reference.sorted(), "cut \(cut), \(lanes) worker(s)")
            }
        }
    }

    /// One more event of key k0: k0's record changes, every other key's stays byte for byte the same.
    static func onlyTheChangedKeysRecordChanges<B: KeyedOperatorBehaviour>(_ make: () -> B, seed: UInt64) throws {
        let worker = try Fixture.worker()
        let evs = Fixture.events(200, seed: seed)
        var b = make()
        _ = Fixture.feed(&b, evs[...], worker: worker, end: false)
        let before = records(b)
        let k0 = StateKey(Array("k0".utf8))
        var ctx = OperatorContext(name: "x", worker: worker)
        let last = (evs.map(\.time).max() ?? 0) + 10_000
        let json = #"{"id":9999,"key":"k0","ts":\#(last),"v":7}"#
        b.process(KeyedEvent(key: k0, time: last, input: 1, bytes: Array(json.utf8), source: 0, position: 9999), &ctx)
        let after = records(b)
        #expect(before[k0] != after[k0])
        for (key, value) in before where key != k0 { #expect(after[key] == value, "\(key.text) did not change") }
    }

    @Test func joinKeysRoundTripThroughTheirRecords() throws {
        guard case .join(let j) = try Fixture.spec("j").kind else { Issue.record("not a join"); return }
        try Self.roundTrip({ JoinOperator(spec: j, merge: nil, budget: Fixture.budget) }, seed: 31)
        try Self.onlyTheChangedKeysRecordChanges({ JoinOperator(spec: j, merge: nil, budget: Fixture.budget) }, seed: 32)
    }

    @Test func dedupKeysRoundTripThroughTheirRecords() throws {
        guard case .dedup(let d) = try Fixture.spec("d").kind else { Issue.record("not a dedup"); return }
        try Self.roundTrip({ DedupOperator(spec: d, budget: Fixture.budget) }, seed: 33)
        try Self.onlyTheChangedKeysRecordChanges({ DedupOperator(spec: d, budget: Fixture.budget) }, seed: 34)
    }

    @Test func aggregateKeysRoundTripThroughTheirRecords() throws {
        for name in ["t", "s"] {
            guard case .aggregate(let a) = try Fixture.spec(name).kind else { Issue.record("not an aggregate"); return }
            try Self.roundTrip({ AggregateOperator(spec: a, udf: nil, budget: Fixture.budget) }, seed: 35)
            try Self.onlyTheChangedKeysRecordChanges({ AggregateOperator(spec: a, udf: nil, budget: Fixture.budget) }, seed: 36)
        }
    }

    @Test func aRecordOfAnotherFormatIsNotDecoded() {
        #expect(Changelog.decode([]) == nil)
        #expect(Changelog.decode([2, 0, 0]) == nil)
        #expect(Changelog.decode(Changelog.encode([5, 6])) == [5, 6])
    }

    // MARK: the ledger

    static func key(_ s: String) -> StateKey { StateKey(Array(s.utf8)) }

    static func summary(_ changes: [ChangelogLedger.Change]) -> [String] {
        changes.map { "\($0.key.text)@\($0.partition)\($0.value == nil ? " tombstone" : "")" }.sorted()
    }

    @Test func recordsGoToTheKeysInputPartitionAndKeysGoneBecomeTombstones() {
        var l = ChangelogLedger(lanes: ["j": 1])
        _ = l.assigning([0, 1, 0, 1])   // imps[0], imps[1], plays[0], plays[1]
        l.begin(1)
        l.stage(1, op: "j", lane: 0, entries: [(Self.key("a"), 0, [1]), (Self.key("b"), 1, [2]), (Self.key("c"), nil, [3])])
        var t = l.take(1)
        #expect(Self.summary(t.writing) == ["a@0", "b@1"])
        #expect(t.excluded.isEmpty)
        #expect(l.unrouted["j"] == 1)
        l.confirm(t.writing)
        // Unchanged: nothing to write.
        l.begin(2)
        l.stage(2, op: "j", lane: 0, entries: [(Self.key("a"), 0, [1]), (Self.key("b"), 1, [2])])
        #expect(l.take(2).writing.isEmpty)
        // a changed; b's events now come from partition 0: a tombstone in 1, the record in 0.
        l.begin(3)
        l.stage(3, op: "j", lane: 0, entries: [(Self.key("a"), 0, [9]), (Self.key("b"), 0, [2])])
        t = l.take(3)
        #expect(Self.summary(t.writing) == ["a@0", "b@0", "b@1 tombstone"])
        l.confirm(t.writing)
        // Both gone (evicted): tombstones where the changelog holds them.
        l.begin(4)
        l.stage(4, op: "j", lane: 0, entries: [])
        t = l.take(4)
        #expect(Self.summary(t.writing) == ["a@0 tombstone", "b@0 tombstone"])
        l.confirm(t.writing)
        l.begin(5)
        l.stage(5, op: "j", lane: 0, entries: [])
        #expect(l.take(5).writing.isEmpty)
    }

    @Test func aWorkerWritesTombstonesOnlyForItsOwnKeys() {
        var l = ChangelogLedger(lanes: ["d": 2])
        _ = l.assigning([0])
        let keys = (0..<20).map { Self.key("k\($0)") }
        l.begin(1)
        for lane in 0..<2 {
            l.stage(1, op: "d", lane: lane, entries: keys.filter { $0.lane(of: 2) == lane }.map { ($0, 0, [1]) })
        }
        let t = l.take(1)
        #expect(t.writing.count == 20)
        l.confirm(t.writing)
        l.begin(2)
        l.stage(2, op: "d", lane: 0, entries: [])   // worker 0 lost all its keys; worker 1 did not report yet
        let gone = l.take(2).writing
        #expect(Set(gone.map(\.key)) == Set(keys.filter { $0.lane(of: 2) == 0 }))
        #expect(gone.allSatisfy { $0.value == nil })
    }

    @Test func onlyPartitionsHeldThroughoutACheckpointAreWrittenAndCommitted() {
        var l = ChangelogLedger(lanes: ["j": 1])
        _ = l.assigning([0, 1])
        l.begin(1)
        l.stage(1, op: "j", lane: 0, entries: [(Self.key("a"), 0, [1]), (Self.key("b"), 1, [2])])
        // Partition 1 is revoked before checkpoint 1 is published: not written, its offsets not committed.
        #expect(l.revoked([1]) == [1])
        var t = l.take(1)
        #expect(Self.summary(t.writing) == ["a@0"])
        #expect(t.excluded == [1])
        l.confirm(t.writing)
        // Assigned again before checkpoint 2 starts, but its restore moved it after: still not held throughout 2.
        #expect(l.assigning([1]) == [1])
        l.begin(2)
        l.restored(op: "j", [ChangelogEntry(partition: 1, key: Self.key("b"), value: Changelog.encode([2]))], partitions: [1])
        l.stage(2, op: "j", lane: 0, entries: [(Self.key("a"), 0, [1]), (Self.key("b"), 1, [3])])
        t = l.take(2)
        #expect(t.writing.isEmpty && t.excluded == [1])
        // Checkpoint 3: held throughout; the restored key is known, so only its change is written.
        l.begin(3)
        l.stage(3, op: "j", lane: 0, entries: [(Self.key("a"), 0, [1]), (Self.key("b"), 1, [2]), (Self.key("c"), 1, [4])])
        t = l.take(3)
        #expect(Self.summary(t.writing) == ["c@1"])
        #expect(t.excluded.isEmpty)
        // A partition assigned while checkpoint 4 is in flight is not in it.
        l.begin(4)
        #expect(l.assigning([2]) == [2])
        #expect(l.take(4).excluded == [2])
        // Two topics' partition 0 (imps[0], plays[0]): revoking one still holds the number.
        var m = ChangelogLedger(lanes: ["j": 1])
        #expect(m.assigning([0, 0]) == [0])
        #expect(m.revoked([0]).isEmpty)
        #expect(m.revoked([0]) == [0])
    }

    @Test func aRevokedPartitionsKeysAreForgottenSoTheNextOwnersStateIsNotTombstoned() {
        var l = ChangelogLedger(lanes: ["j": 1])
        _ = l.assigning([0, 1])
        l.begin(1)
        l.stage(1, op: "j", lane: 0, entries: [(Self.key("a"), 0, [1]), (Self.key("b"), 1, [2])])
        l.confirm(l.take(1).writing)
        _ = l.revoked([1])
        l.begin(2)
        l.stage(2, op: "j", lane: 0, entries: [(Self.key("a"), 0, [1])])   // b was dropped with its partition
        #expect(l.take(2).writing.isEmpty)
    }
}
