import Testing
@testable import SluiceSpec

/// A spec with two Kafka sources (`imps` on topic `imps`, `plays` on `playsTopic`), a file source
/// `titles` if asked for, and the given transforms feeding sink `out`.
private func kafkaSpec(_ transforms: String, playsTopic: String = "plays", titles: Bool = false,
                       sinkFrom: String = "j") -> String {
    """
    pipeline: cp
    sources:
      imps: { kafka: { brokers: 'b:9092', topics: imps } }
      plays: { kafka: { brokers: 'b:9092', topics: \(playsTopic) } }
    \(titles ? "  titles: { file: { path: titles.jsonl } }" : "")
    transforms:
    \(transforms)
    sinks: { out: { from: \(sinkFrom), stdout: {} } }
    """
}

private func warnings(_ yaml: String) throws -> [String] {
    CoPartitioning.warnings(in: try load(yaml)).map(\.description)
}

/// Expects exactly `expected` warnings for `yaml`, printing the actual ones when they differ.
private func expectWarnings(_ yaml: String, _ expected: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    let actual = try warnings(yaml)
    #expect(actual == expected, "\(actual)", sourceLocation: sourceLocation)
}

@Test func joinOfTwoTopicsWarnsThatPartitionCountsMustMatch() throws {
    try expectWarnings(kafkaSpec("""
      j:
        join:
          left: { from: imps, key: '{profile_id}' }
          right: { from: plays, key: '{profile_id}' }
          within: 1m
    """), [
        "p.yaml:7:3: warning: join 'j' reads topics imps, plays: they are co-partitioned only if they have the same "
        + "partition count and are keyed by the join key (the spec cannot tell)",
    ])
}

@Test func joinOfOneTopicOnOneKeyThroughAFilterHasNoWarning() throws {
    try expectWarnings(kafkaSpec("""
      clean: { from: plays, filter: 'event.ok' }
      j:
        join:
          left: { from: imps, key: '{profile_id}' }
          right: { from: clean, key: '{profile_id}' }
          within: 1m
    """, playsTopic: "imps"), [])
}

@Test func selfJoinOfOneTopicOnDifferentFieldsWarns() throws {
    try expectWarnings(kafkaSpec("""
      j:
        join:
          left: { from: imps, key: '{a}' }
          right: { from: imps, key: '{b.c}' }
          within: 1m
      k: { from: plays, filter: 'true' }
    """, sinkFrom: "[j, k]"), [
        "p.yaml:7:3: warning: join 'j' reads one topic (imps) with keys '{a}' and '{b.c}' of different fields: "
        + "its records can be partitioned by at most one of them",
    ])
}

@Test func keyComputedAfterAMapWarnsAtThatInput() throws {
    try expectWarnings(kafkaSpec("""
      rekey: { from: plays, map: { udf: m.rekey } }
      j:
        join:
          left: { from: imps, key: '{profile_id}' }
          right: { from: rekey, key: '{profile_id}' }
          within: 1m
    """, playsTopic: "imps"), [
        "p.yaml:11:34: warning: key '{profile_id}' of input 'rekey' of join 'j' is computed after 'rekey', which can "
        + "change fields: it may not be the key its Kafka records are partitioned by",
    ])
}

@Test func joinOfKafkaWithAFileWarnsAtTheFileSide() throws {
    try expectWarnings(kafkaSpec("""
      j:
        join:
          left: { from: titles, key: '{title_id}' }
          right: { from: imps, key: '{title_id}' }
          within: 1m
      k: { from: plays, filter: 'true' }
    """, titles: true, sinkFrom: "[j, k]"), [
        "p.yaml:9:34: warning: input 'titles' of join 'j' is read from 'titles' (not Kafka) while the other side is "
        + "read from Kafka: with several replicas, each reads all of it but only its own partitions of the Kafka "
        + "topics, so the inputs are not co-partitioned",
    ])
}

@Test func joinOfFilesHasNoWarning() throws {
    try expectWarnings(statefulSpec("""
      j:
        join:
          left: { from: imps, key: '{a}' }
          right: { from: plays, key: '{b}' }
          within: 1s
    """, sinkFrom: "j"), [])
}

@Test func aggregateOverAFilterOfTwoTopicsWarns() throws {
    try expectWarnings(kafkaSpec("""
      both: { from: [imps, plays], filter: 'true' }
      counts:
        aggregate: { from: both, key: '{title_id}', window: { tumbling: 1m }, reduce: { n: count } }
    """, sinkFrom: "counts"), [
        "p.yaml:8:3: warning: aggregate 'counts' reads topics imps, plays: they are co-partitioned only if they "
        + "have the same partition count and are keyed by the aggregate key (the spec cannot tell)",
    ])
}
