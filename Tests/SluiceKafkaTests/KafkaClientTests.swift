import Foundation
import Synchronization
import Testing
import SluiceCore
@testable import SluiceKafka

/// End-to-end behaviour of the producer and consumer against `sluice dev kafka` running as a separate process.
@Suite("Kafka clients against the dev broker", .serialized)
struct KafkaClientTests {

    @Test func producedMessagesAreConsumedBackExactlyWithKeysHeadersAndMetadata() async throws {
        let broker = try DevKafkaProcess(["--topic", "plays:3"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        let n = 300
        let messages = (0..<n).map { i in
            KafkaMessage(value: Array("{\"i\":\(i)}".utf8), key: Array("k\(i % 7)".utf8),
                         headers: [EventMeta.Header(name: "seq", value: Array(String(i).utf8)), EventMeta.Header(name: "empty", value: [])],
                         timestamp: 1_700_000_000_000 + Int64(i))
        }
        let results = try await produceAll(producer, messages, topic: "plays")
        var deliveries: [Int: KafkaDelivery] = [:]
        for (i, r) in results.enumerated() {
            guard case .success(let d) = r else { Issue.record("message \(i) failed: \(r)"); continue }
            deliveries[i] = d
        }
        #expect(deliveries.count == n)

        let consumer = try makeConsumer(broker, group: uniqueName("g"), topics: ["plays"], log: log)
        let run = ConsumerRun(consumer)
        #expect(await run.waitFor(n))
        #expect(try await consumeMarkers(producer, topic: "plays", partitions: 3, runs: [run]))
        await run.stop()
        consumer.close()

        let events = run.testEvents
        #expect(events.count == n)
        var seen = Set<Int>()
        for e in events {
            let text = e.text
            guard let i = Int(text.dropFirst(5).dropLast()), let meta = e.meta, let d = deliveries[i] else {
                Issue.record("unexpected event \(text)"); continue
            }
            seen.insert(i)
            #expect(meta.key == Array("k\(i % 7)".utf8))
            #expect(meta.headers == messages[i].headers)
            #expect(meta.timestamp == 1_700_000_000_000 + Int64(i))
            #expect(meta.topic == "plays")
            #expect(meta.partition == d.partition)
            #expect(meta.offset == d.offset)
            #expect(e.position == d.offset)
        }
        #expect(seen.count == n)
        // Same key, same partition.
        let byKey = Dictionary(grouping: deliveries, by: { $0.key % 7 }).mapValues { Set($0.map { $0.value.partition }) }
        #expect(byKey.values.allSatisfy { $0.count == 1 })
    }

    @Test func restartedConsumerResumesRightAfterTheAcknowledgedPrefix() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:1"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        _ = try await produceAll(producer, (0..<100).map { KafkaMessage(value: Array("m\($0)".utf8)) }, topic: "t")
        let group = uniqueName("g")

        let first = try makeConsumer(broker, group: group, topics: ["t"], log: log)
        let run1 = ConsumerRun(first)
        #expect(await run1.waitFor(100))
        let events = run1.events.withLock { $0 }
        first.acknowledge(events: events.prefix(40))
        await run1.stop()
        first.close()

        let second = try makeConsumer(broker, group: group, topics: ["t"], log: log)
        let run2 = ConsumerRun(second)
        #expect(await run2.waitFor(60))
        #expect(try await consumeMarkers(producer, topic: "t", partitions: 1, runs: [run2]))
        await run2.stop()
        second.close()
        let again = run2.testEvents
        // Nothing acknowledged comes back; everything unacknowledged does, exactly once.
        #expect(again.map(\.text) == (40..<100).map { "m\($0)" })
        #expect(again.first?.meta?.offset == 40)
    }

    @Test func outOfOrderAcknowledgementsCommitOnlyTheContiguousPrefix() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:1"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        _ = try await produceAll(producer, (0..<20).map { KafkaMessage(value: Array("m\($0)".utf8)) }, topic: "t")
        let group = uniqueName("g")

        let first = try makeConsumer(broker, group: group, topics: ["t"], log: log)
        let run1 = ConsumerRun(first)
        #expect(await run1.waitFor(20))
        // Acknowledge 5...19 first (out of order, a gap at 3 and 4), then 0...2.
        first.acknowledge((5..<20).reversed().map { (topic: "t", partition: Int32(0), offset: Int64($0)) })
        #expect(first.committableOffset(topic: "t", partition: 0) == nil)
        first.acknowledge([(topic: "t", partition: Int32(0), offset: Int64(2)), (topic: "t", partition: 0, offset: 0), (topic: "t", partition: 0, offset: 1)])
        #expect(first.committableOffset(topic: "t", partition: 0) == 3)
        await run1.stop()
        first.close()

        let second = try makeConsumer(broker, group: group, topics: ["t"], log: log)
        let run2 = ConsumerRun(second)
        #expect(await run2.waitFor(17))
        #expect(try await consumeMarkers(producer, topic: "t", partitions: 1, runs: [run2]))
        await run2.stop()
        second.close()
        #expect(run2.testEvents.map(\.text) == (3..<20).map { "m\($0)" })
    }

    @Test func batchReceiptsCommitExactlyTheAcknowledgedBatchesAfterRefusals() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:2"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        _ = try await produceAll(producer, (0..<40).map { KafkaMessage(value: Array("m\($0)".utf8), partition: Int32($0 % 2)) }, topic: "t")
        let consumer = try makeConsumer(broker, group: uniqueName("g"), topics: ["t"], log: log)
        let state = ReceiptRunState()
        let thread = Thread {
            consumer.run(batchSize: 6, stop: { state.stop.load(ordering: .acquiring) }, route: { _ in 0 }, receipts: [{ events, receipt in
                // The first three offers are refused: their registrations must be taken back.
                guard state.offers.add(1, ordering: .relaxed).newValue > 3 else { return false }
                state.received.withLock { $0.append((events, receipt)) }
                return true
            }])
            state.done.store(true, ordering: .releasing)
        }
        thread.start()
        #expect(await waitUntil(timeout: 20) { state.received.withLock { $0.reduce(0) { $0 + $1.events.count } } >= 40 })
        let batches = state.received.withLock { $0 }
        // Each receipt spans exactly its batch's records, per partition.
        for b in batches {
            for span in b.receipt.spans {
                let offsets = b.events.compactMap { e in e.meta?.partition == span.partition.partition ? e.meta?.offset : nil }
                #expect(offsets.first == span.first && offsets.last == span.last)
            }
            let partitions = Set(b.events.compactMap { $0.meta?.partition })
            #expect(Set(b.receipt.spans.map(\.partition.partition)) == partitions)
        }
        // Acknowledge every batch but the first: nothing of partition 0 or 1 past the first batch's records commits.
        let first = batches[0].receipt
        for b in batches.dropFirst() { consumer.acknowledge(b.receipt) }
        for span in first.spans {
            #expect(consumer.committableOffset(topic: "t", partition: span.partition.partition) == nil, "\(span)")
        }
        consumer.acknowledge(first)
        #expect(consumer.committableOffset(topic: "t", partition: 0) == 20)
        #expect(consumer.committableOffset(topic: "t", partition: 1) == 20)
        #expect(!log.contains("went back"), "a refused batch's registration was not taken back")
        state.stop.store(true, ordering: .releasing)
        #expect(await waitUntil(timeout: 30) { state.done.load(ordering: .acquiring) })
        consumer.close()
    }

    /// Note: librdkafka 2.0.2's mock cluster rejects OffsetCommit while a rebalance is in progress
    /// (REBALANCE_IN_PROGRESS), unlike a real broker, so the commit made in the revoke callback fails there
    /// (it is logged). This test therefore lets the periodic commit save the acknowledged offsets first and
    /// checks what must hold across a rebalance: nothing lost, nothing committed delivered again.
    @Test func rebalanceLosesNothingAndDoesNotRedeliverCommittedRecords() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:4"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        _ = try await produceAll(producer, (0..<200).map { KafkaMessage(value: Array("a\($0)".utf8), key: Array("\($0)".utf8)) }, topic: "t")
        let group = uniqueName("g")

        let a = try makeConsumer(broker, group: group, topics: ["t"], log: log)
        let runA = ConsumerRun(a) { [a] batch in a.acknowledge(events: batch) }
        #expect(await runA.waitFor(200))
        #expect(a.stats.assigned == 4)
        let commitsBefore = a.stats.commits
        #expect(await waitUntil(timeout: 5) { a.stats.commits > commitsBefore })

        let b = try makeConsumer(broker, group: group, topics: ["t"], log: log)
        let runB = ConsumerRun(b) { [b] batch in b.acknowledge(events: batch) }
        #expect(await waitUntil(timeout: 20) { a.stats.assigned > 0 && b.stats.assigned > 0 && a.stats.assigned + b.stats.assigned == 4 })
        #expect(a.stats.rebalances >= 3)   // assign, revoke, assign
        _ = try await produceAll(producer, (0..<100).map { KafkaMessage(value: Array("b\($0)".utf8), key: Array("\($0)".utf8)) }, topic: "t")
        #expect(await waitUntil(timeout: 20) { runA.count + runB.count >= 300 })
        #expect(try await consumeMarkers(producer, topic: "t", partitions: 4, runs: [runA, runB]))
        await runA.stop(); await runB.stop()
        a.close(); b.close()
        let all = runA.testEvents.map(\.text) + runB.testEvents.map(\.text)
        #expect(all.count == 300)
        #expect(Set(all) == Set((0..<200).map { "a\($0)" } + (0..<100).map { "b\($0)" }))
    }

    @Test func refusedOffersPauseTheConsumerWithBoundedMemoryThenEverythingArrives() async throws {
        let broker = try DevKafkaProcess(["--topic", "big:2"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        let n = 20_000
        let padding = String(repeating: "x", count: 150)
        _ = try await produceAll(producer, (0..<n).map { KafkaMessage(value: Array("{\"i\":\($0),\"p\":\"\(padding)\"}".utf8)) },
                           topic: "big", timeout: 60)

        let batchSize = 100
        let consumer = try makeConsumer(broker, group: uniqueName("g"), topics: ["big"], log: log, prefetchKBytes: 256)
        // Acknowledge each batch one batch late, so stored offsets lag the fetch position while paused.
        let previous = Mutex<[Event]>([])
        let run = ConsumerRun(consumer, batchSize: batchSize) { [consumer] batch in
            let late = previous.withLock { p in let old = p; p = batch; return old }
            consumer.acknowledge(events: late)
        }
        #expect(await run.waitFor(1))
        run.accept.store(false, ordering: .releasing)
        #expect(await waitUntil(timeout: 5) { consumer.stats.paused })
        // While paused: it keeps polling and re-offering, and holds at most one batch plus what was prefetched.
        let offersAtPause = run.offers.load(ordering: .relaxed)
        var maxHeld = 0, maxPrefetched = 0
        let until = Date(timeIntervalSinceNow: 1.5)
        while Date() < until {
            let s = consumer.stats
            maxHeld = max(maxHeld, s.held); maxPrefetched = max(maxPrefetched, s.prefetched)
            try await Task.sleep(for: .milliseconds(20))
        }
        let stalled = consumer.stats
        #expect(stalled.paused)
        #expect(run.offers.load(ordering: .relaxed) > offersAtPause + 10)
        #expect(maxHeld <= batchSize + 2_000, "held \(maxHeld)")   // 256 KiB of prefetch is < 2000 records of 170 bytes
        #expect(stalled.received < run.count + batchSize + 2_000)
        // After the first pause settles, nothing more is fetched: received stops growing. (A property
        // over time, so a fixed window: 500 ms is many fetch rounds of the consumer.)
        let receivedThen = consumer.stats.received
        try await Task.sleep(for: .milliseconds(500))
        #expect(consumer.stats.received == receivedThen)

        run.accept.store(true, ordering: .releasing)
        #expect(await run.waitFor(n, timeout: 30))
        #expect(try await consumeMarkers(producer, topic: "big", partitions: 2, runs: [run]))
        await run.stop()
        consumer.close()
        let values = run.testEvents.map(\.text)
        #expect(values.count == n)
        #expect(Set(values).count == n)
        #expect(consumer.stats.pauses >= 1)
    }

    @Test func injectedProduceErrorsAreRetriedAndDeliveredOnce() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:1"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap, options: ["retry.backoff.ms": "50"]), log: log.log)
        defer { producer.close() }
        // Warm up (metadata, producer id) so the injected errors hit Produce requests.
        _ = try await produceAll(producer, [KafkaMessage(value: Array("warm".utf8))], topic: "t")
        #expect(try broker.command("errors Produce 3 NOT_ENOUGH_REPLICAS") == "ok")
        #expect(try broker.command("errors 0 2 REQUEST_TIMED_OUT") == "ok")
        let results = try await produceAll(producer, (0..<10).map { KafkaMessage(value: Array("m\($0)".utf8)) }, topic: "t")
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } })

        let consumer = try makeConsumer(broker, group: uniqueName("g"), topics: ["t"], log: log)
        let run = ConsumerRun(consumer)
        #expect(await run.waitFor(11))
        #expect(try await consumeMarkers(producer, topic: "t", partitions: 1, runs: [run]))
        await run.stop()
        consumer.close()
        #expect(run.testEvents.map(\.text) == ["warm"] + (0..<10).map { "m\($0)" })
    }

    @Test func deliveryTimeoutWithTheBrokerDownReachesTheCompletionAsAnError() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:1"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap, deliveryTimeoutMs: 1500), log: log.log)
        defer { producer.close(timeout: 1) }
        #expect(try broker.command("down -1") == "ok")
        let start = Date()
        let results = try await produceAll(producer, (0..<3).map { KafkaMessage(value: Array("m\($0)".utf8)) }, topic: "t", timeout: 15)
        for r in results {
            guard case .failure(let error) = r else { Issue.record("expected a failure, got \(r)"); continue }
            #expect(error.name == "_MSG_TIMED_OUT")
        }
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(producer.stats.failed == 3)
        #expect(producer.stats.inFlight == 0)
    }

    @Test func kcatReadsWhatTheProducerWrote() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:1"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        let lines = (0..<5).map { "{\"n\":\($0)}" }
        _ = try await produceAll(producer, lines.map { KafkaMessage(value: Array($0.utf8), key: Array("key".utf8)) }, topic: "t")

        let kcat = Process()
        kcat.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        kcat.arguments = ["-C", "-b", broker.bootstrap, "-t", "t", "-e", "-q", "-f", "%k %s\n"]
        let out = Pipe()
        kcat.standardOutput = out
        kcat.standardError = FileHandle.nullDevice
        try kcat.run()
        let (status, data) = try await offPool { () -> (Int32, Data) in
            let data = out.fileHandleForReading.readDataToEndOfFile()
            kcat.waitUntilExit()
            return (kcat.terminationStatus, data)
        }
        #expect(status == 0)
        #expect(String(decoding: data, as: UTF8.self) == lines.map { "key \($0)\n" }.joined())
    }

    @Test func producerRecreatesItsHandleAfterAFatalError() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:1"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        _ = try await produceAll(producer, [KafkaMessage(value: Array("before".utf8))], topic: "t")
        producer.injectFatalErrorForTesting()
        #expect(await waitUntil(timeout: 5) { producer.stats.recreated == 1 })
        #expect(log.contains("fatal error"))
        let results = try await produceAll(producer, [KafkaMessage(value: Array("after".utf8))], topic: "t")
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } })
    }

    @Test func consumerSurvivesAllBrokersGoingDownAndCatchesUpAfterwards() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:1"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        _ = try await produceAll(producer, (0..<10).map { KafkaMessage(value: Array("a\($0)".utf8)) }, topic: "t")
        let consumer = try makeConsumer(broker, group: uniqueName("g"), topics: ["t"], log: log)
        let run = ConsumerRun(consumer)
        #expect(await run.waitFor(10))
        #expect(try broker.command("down -1") == "ok")
        try await Task.sleep(for: .milliseconds(1_500))   // the outage (not a wait for a result)
        #expect(try broker.command("up -1") == "ok")
        _ = try await produceAll(producer, (0..<10).map { KafkaMessage(value: Array("b\($0)".utf8)) }, topic: "t")
        #expect(await run.waitFor(20, timeout: 30))
        await run.stop()
        consumer.close()
        #expect(run.events.withLock { $0.map(\.text) } == (0..<10).map { "a\($0)" } + (0..<10).map { "b\($0)" })
    }
}

/// The `sluice dev kafka` process itself.
@Suite("sluice dev kafka")
struct DevKafkaCommandTests {
    @Test func printsTheBootstrapFirstAndAnswersEveryCommandWithOneLine() async throws {
        let broker = try DevKafkaProcess(["--brokers", "3", "--topic", "a:2", "--topic", "b:1"])
        #expect(broker.bootstrap.split(separator: ",").count == 3)
        #expect(broker.bootstrap.hasPrefix("127.0.0.1:"))
        #expect(try broker.command("down 2") == "ok")
        #expect(try broker.command("up 2") == "ok")
        #expect(try broker.command("rtt 1 5") == "ok")
        #expect(try broker.command("errors Produce 1 7") == "ok")
        #expect(try broker.command("topic c 4") == "ok")
        #expect(try broker.command("bootstrap") == "ok \(broker.bootstrap)")
        #expect(try broker.command("down 9").hasPrefix("error: "))
        #expect(try broker.command("errors Nope 1 7").hasPrefix("error: "))
        #expect(try broker.command("errors 0 1 NO_SUCH_ERROR").hasPrefix("error: "))
        #expect(try broker.command("rtt 1").hasPrefix("error: usage"))
        #expect(try broker.command("frobnicate").hasPrefix("error: unknown command"))
        #expect(try await broker.stopAndWait() == 0)
    }

    @Test func fixedPortAcceptsBootstrapConnections() async throws {
        let port = Int.random(in: 20_000...40_000)
        let broker = try DevKafkaProcess(["--port", String(port), "--topic", "t:1"])
        defer { broker.stop() }
        #expect(broker.bootstrap.hasPrefix("127.0.0.1:\(port),"))
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: "127.0.0.1:\(port)"), log: log.log)
        defer { producer.close() }
        let results = try await produceAll(producer, [KafkaMessage(value: Array("x".utf8))], topic: "t")
        #expect(results.allSatisfy { if case .success = $0 { true } else { false } })
    }
}

@Suite("Kafka consumer shutdown")
struct KafkaConsumerShutdownTests {
    @Test func closeReturnsWithinSecondsEvenWithAllBrokersDown() async throws {
        let broker = try DevKafkaProcess(["--topic", "t:1"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        _ = try await produceAll(producer, (0..<10).map { KafkaMessage(value: Array("m\($0)".utf8)) }, topic: "t")
        producer.close()
        let consumer = try makeConsumer(broker, group: uniqueName("g"), topics: ["t"], log: log)
        let run = ConsumerRun(consumer) { [consumer] batch in consumer.acknowledge(events: batch) }
        #expect(await run.waitFor(10))
        #expect(try broker.command("down -1") == "ok")
        try await Task.sleep(for: .milliseconds(300))   // the consumer sees the outage (not a wait for a result)
        let start = Date()
        await run.stop()
        try await offPool { consumer.close() }
        let took = Date().timeIntervalSince(start)
        #expect(took < 15, "close took \(took) s")   // commit wait (5 s) + consumer_close (~session.timeout.ms)
        #expect(log.lines.withLock { $0.contains { $0.contains("closed") } })
    }
}

/// What the receipt test's poll thread shares with the test.
private final class ReceiptRunState: Sendable {
    let received = Mutex<[(events: [Event], receipt: KafkaBatchReceipt)]>([])
    let offers = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
    let done = Atomic<Bool>(false)
}
