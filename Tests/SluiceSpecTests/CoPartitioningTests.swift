import Testing
@testable import SluiceSpec

/// A pipeline `cp` with the given sources and transforms, sink `out` reading `sinkFrom`.
private func spec(sources: String, _ transforms: String, sinkFrom: String = "j") -> String {
    """
    pipeline: cp
    sources:
    \(sources)
    transforms:
    \(transforms)
    sinks: { out: { from: \(sinkFrom), stdout: {} } }
    """
}

/// One Kafka source `k` reading `topics`.
private func kafka(_ topics: String, options: String = "{}") -> String {
    "  k: { kafka: { brokers: 'b:9092', topics: \(topics), options: \(options) } }"
}

/// Expects exactly `expected` warnings for `yaml`, printing the actual ones when they differ.
private func expectWarnings(_ yaml: String, _ expected: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    let actual = CoPartitioning.warnings(in: try load(yaml)).map(\.description)
    #expect(actual == expected, "\(actual)", sourceLocation: sourceLocation)
}

/// A join of the two topics of one source, split by filters on `ctx.meta.topic`.
private let splitJoin = """
  i: { from: k, filter: "ctx.meta.topic == 'imps'" }
  p: { from: k, filter: "ctx.meta.topic == 'plays'" }
  j:
    join:
      left: { from: i, key: '{profile_id}' }
      right: { from: p, key: '{profile_id}' }
      within: 1m
"""

@Test func joinOfTwoTopicsOfOneSourceWarnsThatPartitionCountsMustMatch() throws {
    try expectWarnings(spec(sources: kafka("[imps, plays]"), splitJoin), [
        "p.yaml:7:3: warning: join 'j' reads topics imps, plays: they are co-partitioned only if they have the same "
        + "partition count and are keyed by the join key (the spec cannot tell)",
    ])
}

@Test func joinOfOneTopicOnOneKeyThroughFiltersHasNoWarning() throws {
    try expectWarnings(spec(sources: kafka("imps"), splitJoin), [])
}

@Test func joinOfTwoKafkaSourcesOfOneGroupSharesAConsumerAndWarnsOnlyAboutTopics() throws {
    try expectWarnings(spec(sources: """
      imps: { kafka: { brokers: 'b:9092', topics: imps } }
      plays: { kafka: { brokers: 'b:9092', topics: plays } }
    """, """
      j:
        join:
          left: { from: imps, key: '{profile_id}' }
          right: { from: plays, key: '{profile_id}' }
          within: 1m
    """), [
        "p.yaml:6:3: warning: join 'j' reads topics imps, plays: they are co-partitioned only if they have the same "
        + "partition count and are keyed by the join key (the spec cannot tell)",
    ])
}

@Test func joinOfKafkaSourcesOfDifferentGroupsWarnsThatTheirPartitionsAreAssignedIndependently() throws {
    try expectWarnings(spec(sources: """
      imps: { kafka: { brokers: 'b:9092', topics: imps, group: a } }
      plays: { kafka: { brokers: 'b:9092', topics: plays, group: b } }
    """, """
      j:
        join:
          left: { from: imps, key: '{profile_id}' }
          right: { from: plays, key: '{profile_id}' }
          within: 1m
    """), [
        "p.yaml:6:3: warning: join 'j' reads topics imps, plays: they are co-partitioned only if they have the same "
        + "partition count and are keyed by the join key (the spec cannot tell)",
        "p.yaml:6:3: warning: join 'j' reads Kafka sources 'imps', 'plays' that cannot share one consumer (different "
        + "brokers, group, start or options, or overlapping or regex topics): with several replicas Kafka assigns "
        + "their partitions independently, so partition p of each can go to a different replica; give them the same "
        + "brokers, group and options",
    ])
}

@Test func sourcesShareAConsumerOnlyWithTheSameBrokersGroupStartOptionsAndDisjointPlainTopics() throws {
    let text = """
    pipeline: p
    sources:
      a: { kafka: { brokers: 'b:9092', topics: [t1, t2] } }
      b: { kafka: { brokers: 'b:9092', topics: t3, group: p } }
      c: { kafka: { brokers: 'b:9092', topics: t4, group: other } }
      d: { kafka: { brokers: 'b:9092', topics: t1 } }
      e: { kafka: { brokers: 'b:9092', topics: '^x.*' } }
      f: { kafka: { brokers: 'b:9092', topics: t5, start: latest } }
      g: { stdin: {} }
      h: { kafka: { brokers: 'b:9092', topics: t6 } }
    sinks:
      o: { from: [a, b, c, d, e, f, g, h], stdout: {} }
    """
    let spec = try load(text)
    #expect(SharedKafkaConsumers.sets(in: spec) == [[0, 1, 7], [2], [3], [4], [5]])
}

@Test func selfJoinOfOneTopicOnDifferentFieldsWarns() throws {
    try expectWarnings(spec(sources: kafka("imps"), """
      j:
        join:
          left: { from: k, key: '{a}' }
          right: { from: k, key: '{b.c}' }
          within: 1m
    """), [
        "p.yaml:5:3: warning: join 'j' reads one topic (imps) with keys '{a}' and '{b.c}' of different fields: "
        + "its records can be partitioned by at most one of them",
    ])
}

@Test func keyComputedAfterAMapWarnsAtThatInput() throws {
    try expectWarnings(spec(sources: kafka("imps"), """
      rekey: { from: k, map: { udf: m.rekey } }
      j:
        join:
          left: { from: k, key: '{profile_id}' }
          right: { from: rekey, key: '{profile_id}' }
          within: 1m
    """), [
        "p.yaml:9:34: warning: key '{profile_id}' of input 'rekey' of join 'j' is computed after 'rekey', which can "
        + "change fields: it may not be the key its Kafka records are partitioned by",
    ])
}

@Test func joinOfKafkaWithAFileWarnsAtTheFileSide() throws {
    try expectWarnings(spec(sources: kafka("imps") + "\n  titles: { file: { path: titles.jsonl } }", """
      j:
        join:
          left: { from: titles, key: '{title_id}' }
          right: { from: k, key: '{title_id}' }
          within: 1m
    """), [
        "p.yaml:8:34: warning: input 'titles' of join 'j' is read from 'titles' (not Kafka) while the other side is "
        + "read from Kafka: with several replicas, each reads all of it but only its own partitions of the Kafka "
        + "topics, so the inputs are not co-partitioned",
    ])
}

@Test func aRoundRobinAssignorWarns() throws {
    try expectWarnings(spec(sources: kafka("imps", options: "{ partition.assignment.strategy: roundrobin }"), """
      j:
        join:
          left: { from: k, key: '{a}' }
          right: { from: k, key: '{a}' }
          within: 1m
    """), [
        "p.yaml:5:3: warning: join 'j' reads source 'k' with partition.assignment.strategy 'roundrobin': only the "
        + "range assignor gives partition p of every topic to the same replica",
    ])
}

@Test func aggregateOverAFilterOfTwoTopicsWarns() throws {
    try expectWarnings(spec(sources: kafka("[imps, plays]"), """
      both: { from: k, filter: 'true' }
      counts:
        aggregate: { from: both, key: '{title_id}', window: { tumbling: 1m }, reduce: { n: count } }
    """, sinkFrom: "counts"), [
        "p.yaml:6:3: warning: aggregate 'counts' reads topics imps, plays: they are co-partitioned only if they "
        + "have the same partition count and are keyed by the aggregate key (the spec cannot tell)",
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

@Test func theRangeAssignorFirstHasNoWarning() throws {
    try expectWarnings(spec(sources: kafka("imps", options: "{ partition.assignment.strategy: 'range, roundrobin' }"), """
      j:
        join:
          left: { from: k, key: '{a}' }
          right: { from: k, key: '{a}' }
          within: 1m
    """), [])
}

@Test func kafkaFedStateWithoutCheckpointsWarnsThatItHasNoChangelog() throws {
    let joined = spec(sources: """
      imps: { kafka: { brokers: 'b:9092', topics: imps } }
      plays: { file: { path: /dev/null } }
    """, """
      j:
        join:
          left: { from: imps, key: '{profile_id}' }
          right: { from: plays, key: '{profile_id}' }
          within: 1m
    """)
    #expect(ChangelogRequirements.warnings(in: try load(joined)).map(\.description) == [
        "p.yaml:6:3: warning: join 'j' reads Kafka without settings.checkpoint: its state is in memory only (no checkpoint, "
        + "no changelog topic), so after a restart or a rebalance its keys start empty; with settings.checkpoint it is kept "
        + "in cp-j-changelog",
    ])
    #expect(ChangelogRequirements.warnings(in: try load(joined + "\nsettings: { checkpoint: { every: 1s } }")).isEmpty)
    let files = spec(sources: "  f: { file: { path: /dev/null } }", "  d: { dedup: { from: f, key: '{k}', within: 1m } }", sinkFrom: "d")
    #expect(ChangelogRequirements.warnings(in: try load(files)).isEmpty)
}
