import Foundation
import Testing
import SluiceCore
@testable import SluiceKafka

/// The pieces of the changelog topics against `sluice dev kafka` (its own process): topic metadata,
/// CreateTopics failing clearly on a cluster that does not serve it, tombstones produced and read
/// back, and reading partitions to the end offsets of the moment.
@Suite("Changelog topic pieces against the dev broker", .serialized)
struct TopicAdminTests {
    @Test func partitionCountsListEveryTopicAndCreatingOneTheDevBrokerCannotMakeFailsClearly() async throws {
        let broker = try DevKafkaProcess(["--topic", "imps:4", "--topic", "plays:2"])
        defer { broker.stop() }
        let counts = try await offPool { try KafkaTopicAdmin.partitionCounts(brokers: broker.bootstrap) }
        #expect(counts["imps"] == 4 && counts["plays"] == 2)
        #expect(counts["p-j-changelog"] == nil, "asking creates nothing")
        let error = try await offPool { () -> KafkaError? in
            do throws(KafkaError) { try KafkaTopicAdmin.createTopic(brokers: broker.bootstrap, name: "p-j-changelog", partitions: 4,
                                                 configs: ["cleanup.policy": "compact"], timeout: 2) } catch { return error }
            return nil
        }
        let e = try #require(error, "the mock cluster does not serve CreateTopics: an error, not a hang or a crash")
        #expect(e.message.hasPrefix("create topic p-j-changelog: "), "\(e)")
        #expect(try await offPool { try KafkaTopicAdmin.partitionCounts(brokers: broker.bootstrap) }["p-j-changelog"] == nil)
    }

    @Test func tombstonesAreReadBackAsNilAndReadingStopsAtTheEndOffsetsOfTheMoment() async throws {
        let broker = try DevKafkaProcess(["--topic", "cl:3"])
        defer { broker.stop() }
        let log = LogSink()
        let producer = try KafkaProducerClient(config: KafkaProducerConfig(brokers: broker.bootstrap), log: log.log)
        defer { producer.close() }
        var messages = [
            KafkaMessage(value: [1, 2], key: Array("a".utf8), partition: 0),
            KafkaMessage(value: [3], key: Array("b".utf8), partition: 0),
            KafkaMessage(value: [], key: Array("a".utf8), partition: 0),
            KafkaMessage(value: [], key: Array("c".utf8), partition: 2),
        ]
        messages[2].tombstone = true
        let results = try await produceAll(producer, messages, topic: "cl")
        #expect(results.allSatisfy { if case .success = $0 { return true } else { return false } })
        let read = try await offPool { try KafkaPartitionReader.readToEnd(brokers: broker.bootstrap, topic: "cl", partitions: [0, 1, 2], timeout: 30) }
        // Offset order is promised per partition only: partitions may arrive interleaved.
        let records = [Int32(0), 1, 2].flatMap { p in read.filter { $0.partition == p } }
        #expect(read.count == records.count)
        #expect(records.map(\.partition) == [0, 0, 0, 2])
        #expect(records.map { String(decoding: $0.key, as: UTF8.self) } == ["a", "b", "a", "c"])
        #expect(records[0].value == [1, 2] && records[1].value == [3])
        #expect(records[2].value == nil, "a tombstone has a NULL value")
        #expect(records[3].value == [], "an empty value is not a tombstone")
        // Partitions with nothing in them end at once; an unknown partition is an error, not a hang.
        #expect(try await offPool { try KafkaPartitionReader.readToEnd(brokers: broker.bootstrap, topic: "cl", partitions: [1], timeout: 30) }.isEmpty)
        let failure = try await offPool { () -> KafkaError? in
            do throws(KafkaError) { _ = try KafkaPartitionReader.readToEnd(brokers: broker.bootstrap, topic: "cl", partitions: [7], timeout: 5) } catch { return error }
            return nil
        }
        #expect(failure != nil)
    }
}
