import Testing
@testable import SluiceKafka
import SluiceCore

@Suite struct OffsetTrackerTests {
    @Test func inOrderAcknowledgementsAdvanceTheCommittableOffset() {
        var t = OffsetTracker()
        for o in 10..<15 { let ok = t.delivered(Int64(o)); #expect(ok) }
        #expect(t.committable == nil)
        do { let ok = t.acknowledge(10); #expect(ok) }
        #expect(t.committable == 11)
        do { let ok = t.acknowledge(11); #expect(ok) }
        #expect(t.committable == 12)
        #expect(t.outstanding == 3)
    }

    @Test func outOfOrderAcknowledgementsCommitOnlyTheContiguousPrefix() {
        var t = OffsetTracker()
        for o in 0..<10 { _ = t.delivered(Int64(o)) }
        for o in [9, 7, 5, 3, 1] { _ = t.acknowledge(Int64(o)) }
        #expect(t.committable == nil)
        _ = t.acknowledge(0)
        #expect(t.committable == 2)
        _ = t.acknowledge(2)
        #expect(t.committable == 4)
        for o in [4, 6, 8] { _ = t.acknowledge(Int64(o)) }
        #expect(t.committable == 10)
        #expect(t.outstanding == 0)
    }

    @Test func gapsInOffsetsDoNotBlockTheCommit() {
        var t = OffsetTracker()
        for o in [3, 4, 8, 20] { _ = t.delivered(Int64(o)) }   // compaction / transaction markers leave gaps
        for o in [20, 8, 4, 3] { _ = t.acknowledge(Int64(o)) }
        #expect(t.committable == 21)
    }

    @Test func unknownAndDuplicateAcknowledgementsAreIgnored() {
        var t = OffsetTracker()
        for o in 0..<3 { _ = t.delivered(Int64(o)) }
        do { let ok = t.acknowledge(7); #expect(!ok) }
        do { let ok = t.acknowledge(0); #expect(ok) }
        do { let ok = t.acknowledge(0); #expect(!ok) }
        do { let ok = t.acknowledge(-1); #expect(!ok) }
        #expect(t.committable == 1)
    }

    @Test func offsetsGoingBackwardsAreRejectedSoTheCallerStartsAFreshTracker() {
        var t = OffsetTracker()
        _ = t.delivered(5)
        do { let ok = t.delivered(5); #expect(!ok) }
        do { let ok = t.delivered(2); #expect(!ok) }
        _ = t.acknowledge(5)
        do { let ok = t.delivered(3); #expect(!ok) }   // below what is already committable
        do { let ok = t.delivered(6); #expect(ok) }
    }

    @Test func batchEntriesCommitOnlyOnceEveryEarlierBatchIsAcknowledged() {
        var t = OffsetTracker()
        // Three batches of one partition: offsets 0...4, 5...9 (a gap: 10 is a marker), 11...14.
        do { let ok = t.delivered(first: 0, last: 4); #expect(ok) }
        do { let ok = t.delivered(first: 5, last: 9); #expect(ok) }
        do { let ok = t.delivered(first: 11, last: 14); #expect(ok) }
        do { let ok = t.delivered(first: 14, last: 20); #expect(!ok, "a batch must start after the last one registered") }
        _ = t.acknowledge(14)
        _ = t.acknowledge(9)
        #expect(t.committable == nil, "the first batch is not acknowledged yet")
        _ = t.acknowledge(4)
        #expect(t.committable == 15)
        #expect(t.outstanding == 0)
    }

    @Test func aRetractedBatchIsRegisteredAgainWithoutAReset() {
        var t = OffsetTracker()
        do { let ok = t.delivered(first: 0, last: 4); #expect(ok) }
        do { let ok = t.delivered(first: 5, last: 9); #expect(ok) }
        t.retract(9)   // refused downstream
        #expect(t.outstanding == 1)
        do { let ok = t.delivered(first: 5, last: 12); #expect(ok, "offered again, with more records") }
        t.retract(4)   // not the last registration: ignored
        #expect(t.outstanding == 2)
        _ = t.acknowledge(4)
        t.retract(12)
        t.retract(4)   // acknowledged already: ignored
        #expect(t.committable == 5)
        #expect(t.outstanding == 0)
        do { let ok = t.delivered(first: 4, last: 6); #expect(!ok, "below what is committable") }
    }

    @Test func aReceiptAcknowledgesOnlyTheTrackerItWasRegisteredWith() {
        // A partition revoked and assigned again gets a new tracker, whose batch may end at the same
        // offset as a batch of the old one still in flight: the old receipt must not acknowledge it.
        let core = ConsumerCore(log: { _, _ in }, autoCommit: true, commitInterval: 1, stallWarning: 60, commitTimeout: 1)
        let key = TopicPartition(topic: "t", partition: 0)
        core.shared.withLock { s in
            var t = OffsetTracker(generation: 2)
            _ = t.delivered(first: 0, last: 19)   // re-read from the committed offset 0 as one batch
            s.trackers[key] = t
        }
        let stale = KafkaBatchReceipt(spans: [.init(partition: key, first: 10, last: 19, generation: 1)])
        core.acknowledge(stale)
        #expect(core.shared.withLock { $0.trackers[key]?.committable } == nil)
        core.acknowledge(KafkaBatchReceipt(spans: [.init(partition: key, first: 0, last: 19, generation: 2)]))
        #expect(core.shared.withLock { $0.trackers[key]?.committable } == 20)
    }

    @Test func manyOutstandingOffsetsStayCorrect() {
        var t = OffsetTracker()
        for o in 0..<20_000 { _ = t.delivered(Int64(o)) }
        for o in stride(from: 19_999, through: 1, by: -1) { _ = t.acknowledge(Int64(o)) }
        #expect(t.committable == nil)
        _ = t.acknowledge(0)
        #expect(t.committable == 20_000)
    }
}

@Suite struct KeyTemplateTests {
    func render(_ template: String, _ json: String) throws -> String {
        String(decoding: try KeyTemplate(template).render(Array(json.utf8)), as: UTF8.self)
    }

    @Test func stringsAreUnquotedAndNumbersKeptAsWritten() throws {
        #expect(try render("{profile_id}", #"{"profile_id":"p-1","x":2}"#) == "p-1")
        #expect(try render("{n}", #"{"n":1.50e3}"#) == "1.50e3")
        #expect(try render("{n}", #"{"n":-7}"#) == "-7")
        #expect(try render("{b}", #"{"b":true}"#) == "true")
    }

    @Test func nestedPathsAndLiteralsCombine() throws {
        #expect(try render("{a}:{b.c}", #"{"a":"x","b":{"c":42}}"#) == "x:42")
        #expect(try render("user/{u.id}/{{raw}}", #"{"u":{"id":"é\n"}}"#) == "user/é\n/{raw}")
    }

    @Test func escapesInStringsAreDecoded() throws {
        #expect(try render("{s}", #"{"s":"a\"b\\c\u00e9"}"#) == "a\"b\\cé")
        #expect(try render("[{s}]", #"{"s":""}"#) == "[]")
    }

    @Test func missingAndNullFieldsRenderEmpty() throws {
        #expect(try render("{a}:{b}", #"{"a":"x"}"#) == "x:")
        #expect(try render("{a}", #"{"a":null}"#) == "")
        #expect(try render("{a.b}", #"{"a":"not an object"}"#) == "")
        #expect(try render("{a}", "not json") == "")
        #expect(try KeyTemplate("{a}:{b}").missingFields(in: Array(#"{"a":1,"b":null}"#.utf8)) == ["b"])
    }

    @Test func validatingAndRenderingInOnePassAgreesWithRendering() throws {
        let t = try KeyTemplate("{a}:{b.c}:{a}")
        var out: [UInt8] = []
        let ok = Array(#"{"a":"x\u0041","b":{"c":7},"a":"y"}"#.utf8)
        #expect(try t.validateAndRenderComplete(ok[...], into: &out).get() == true)
        #expect(String(decoding: out, as: UTF8.self) == "y:7:y")   // the last duplicate wins
        #expect(out == t.render(ok))
        #expect(try t.validateAndRenderComplete(Array(#"{"a":"x"}"#.utf8)[...], into: &out).get() == false)
        guard case .failure(let e) = t.validateAndRenderComplete(Array(#"{"a":"x",}"#.utf8)[...], into: &out) else {
            Issue.record("invalid JSON was accepted"); return
        }
        #expect("\(e)".contains("byte"))
        guard case .failure = t.validateAndRenderComplete(Array("[1]".utf8)[...], into: &out) else {
            Issue.record("an array was accepted as an event"); return
        }
    }

    /// Bytes the Lua encoder wrote repeat no key, so the render may stop at the last path found:
    /// on such bytes it must agree with the full scan for every kind of path.
    @Test func renderingBytesWithDistinctKeysAgreesWithTheFullScan() throws {
        let templates = ["{a}", "{z}", "{a}:{b.c}:{a}", "{b}|{b.c}", "{b.c}|{b}", "{b.c.d}|{z}", "{missing}:{a}",
                         "{t.x}", "{b.e}{a}", "k-{n}", "{b.c.d}|{b.c}|{b}"]
        let events = [#"{"a":"x","b":{"c":7,"e":"q"},"n":-1.5,"t":"text","z":[1,{"a":2}]}"#,
                      #"{"z":null,"b":{"e":{"c":1},"c":{"d":"deep"}},"a":"A"}"#,
                      #"{"b":[1,2],"a":{"b":{"c":1}}}"#, "{}", #"{"n":0}"#, "[1]", "not json",
                      #"{"t":{"x":"in"},"a":"","b":{}}"#]
        for t in templates {
            let key = try KeyTemplate(t)
            for e in events {
                var full: [UInt8] = [], distinct: [UInt8] = []
                key.render(Array(e.utf8)[...], appendingTo: &full)
                key.render(Array(e.utf8)[...], distinctKeys: true, appendingTo: &distinct)
                #expect(distinct == full, "\(t) on \(e)")
            }
        }
        // The walk really stops at the first match: given a duplicate (which such bytes never
        // have) it keeps the first one, where the full scan takes the last.
        var out: [UInt8] = []
        try KeyTemplate("{a}").render(Array(#"{"a":1,"a":2}"#.utf8)[...], distinctKeys: true, appendingTo: &out)
        #expect(out == Array("1".utf8))
        #expect(try render("{a}", #"{"a":1,"a":2}"#) == "2")
    }

    @Test func objectsAndArraysRenderAsRawJSON() throws {
        #expect(try render("{o}", #"{"o":{"k":[1,2]}}"#) == #"{"k":[1,2]}"#)
    }

    @Test func malformedTemplatesAreRejected() {
        #expect(throws: KeyTemplateError.self) { try KeyTemplate("{a") }
        #expect(throws: KeyTemplateError.self) { try KeyTemplate("a}") }
        #expect(throws: KeyTemplateError.self) { try KeyTemplate("{}") }
        #expect((try? KeyTemplate("{a}-{b.c}"))?.fields == ["a", "b.c"])
    }
}

@Suite struct KafkaErrorTests {
    @Test func errorCodesAreFoundByNameOrNumber() {
        #expect(KafkaError.code(named: "7") == 7)
        #expect(KafkaError.code(named: "REQUEST_TIMED_OUT") == 7)
        #expect(KafkaError.code(named: "not_enough_replicas") == 19)
        #expect(KafkaError.code(named: "_TRANSPORT") == -195)
        #expect(KafkaError.code(named: "RD_KAFKA_RESP_ERR__TRANSPORT") == -195)
        #expect(KafkaError.code(named: "NOPE") == nil)
    }

    @Test func invalidOptionsAreReportedWithTheKey() {
        #expect {
            _ = try KafkaProducerClient(config: KafkaProducerConfig(brokers: "127.0.0.1:1", options: ["no.such.option": "1"]), log: { _, _ in })
        } throws: { error in
            (error as? KafkaError)?.message.contains("no.such.option") == true
        }
    }
}

extension OffsetTrackerTests {
    /// A complete checkpoint covers every record below its offset; records after it stay outstanding.
    @Test func aCheckpointAcknowledgesEverythingBelowItsOffset() {
        var t = OffsetTracker()
        for o in [3, 4, 6, 7, 9] as [Int64] { _ = t.delivered(o) }
        #expect(t.acknowledge(below: 3) == false)
        #expect(t.committable == nil)
        #expect(t.acknowledge(below: 7) == true)
        #expect(t.committable == 7)
        #expect(t.outstanding == 2)
        _ = t.acknowledge(9)   // acknowledged out of order: waits for 7
        #expect(t.committable == 7)
        #expect(t.acknowledge(below: 8) == true)
        #expect(t.committable == 10, "7 below the checkpoint, then 9 already acknowledged")
        #expect(t.outstanding == 0)
    }
}

/// The producer's batching wait comes from `settings.linger`; `options` still win.
@Suite struct ProducerLingerTests {
    @Test func lingerMsFollowsTheConfigAndOptionsOverrideIt() throws {
        let settings = { (config: KafkaProducerConfig) throws -> [String: String] in
            let p = try KafkaProducerClient(config: config) { _, _ in }
            defer { p.close() }
            var d: [String: String] = [:]
            for (k, v) in p.settings { d[k] = v }   // later entries win, as in librdkafka
            return d
        }
        #expect(try settings(KafkaProducerConfig(brokers: "127.0.0.1:1"))["linger.ms"] == "5")
        #expect(try settings(KafkaProducerConfig(brokers: "127.0.0.1:1", lingerMs: 0))["linger.ms"] == "0")
        #expect(try settings(KafkaProducerConfig(brokers: "127.0.0.1:1", options: ["linger.ms": "50"], lingerMs: 1))["linger.ms"] == "50")
    }
}
