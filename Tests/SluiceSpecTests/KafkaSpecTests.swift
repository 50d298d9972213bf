import Testing
@testable import SluiceSpec

@Test func kafkaSourceAndSinkLoadWithOptionsAsStrings() throws {
    let spec = try load("""
    sources:
      plays:
        kafka:
          brokers: ${B:-127.0.0.1:9092}
          topics: [plays, more]
          group: g1
          start: latest
          options: { fetch.min.bytes: 1, enable.partition.eof: false }
    sinks:
      out:
        from: plays
        kafka: { brokers: 'h:1', topic: out, key: '{profile_id}', options: { acks: all, linger.ms: 5 } }
    """)
    guard case .kafka(let k) = spec.sources[0].kind else { Issue.record("not a kafka source"); return }
    #expect(k == KafkaSourceSpec(brokers: "127.0.0.1:9092", topics: ["plays", "more"], group: "g1", start: "latest",
                                 options: ["fetch.min.bytes": "1", "enable.partition.eof": "false"]))
    guard case .kafka(let s) = spec.sinks[0].kind else { Issue.record("not a kafka sink"); return }
    #expect(s == KafkaSinkSpec(brokers: "h:1", topic: "out", key: "{profile_id}", options: ["acks": "all", "linger.ms": "5"]))
}

@Test func kafkaSourceGroupDefaultsToNilAndStartToEarliest() throws {
    let spec = try load("""
    sources: { k: { kafka: { brokers: b, topics: t } } }
    sinks: { out: { from: k, stdout: {} } }
    """)
    guard case .kafka(let k) = spec.sources[0].kind else { Issue.record("not a kafka source"); return }
    #expect(k.group == nil && k.start == "earliest" && k.topics == ["t"])
}

@Test func kafkaMissingKeysAndBadValuesAreLocated() {
    #expect(errors("""
    sources: { k: { kafka: { topics: [], start: oldest, options: { a: [1] } } } }
    sinks: { out: { from: k, kafka: { brokers: b } } }
    """) == [
        "p.yaml:1:17: missing 'brokers' in 'kafka' of source 'k'",
        "p.yaml:1:34: 'topics' in 'kafka' of source 'k' must list at least one topic",
        "p.yaml:1:45: invalid value 'oldest' for 'start' in 'kafka' of source 'k' (expected earliest or latest)",
        "p.yaml:1:67: expected a scalar value for 'a' in 'options' in 'kafka' of source 'k', found a sequence",
        "p.yaml:2:33: missing 'topic' in 'kafka' of sink 'out'",
    ])
}

@Test func adminListenParsesHostAndPort() throws {
    let spec = try load(minimal("settings: { admin: { listen: 127.0.0.1:9464 } }"))
    #expect(spec.settings.admin == AdminSpec(host: "127.0.0.1", port: 9464))
}

@Test func adminListenWithoutAPortIsLocated() {
    #expect(errors(minimal("settings: { admin: { listen: localhost } }")) == [
        "p.yaml:6:30: invalid address 'localhost' for 'listen' in 'admin' (expected HOST:PORT, e.g. 127.0.0.1:9464)",
    ])
}
