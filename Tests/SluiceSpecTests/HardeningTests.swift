import Testing
@testable import SluiceSpec

// Problems from the hardening issue, each with its exact `file:line:col: message`.

@Test func aSecondStdinSourceIsAnError() {
    #expect(errors("""
    sources:
      a: { stdin: {} }
      b: { stdin: {} }
    sinks: { out: { from: [a, b], stdout: {} } }
    """) == [
        "p.yaml:3:8: source 'b' reads stdin, which source 'a' (line 2, column 8) already reads; a pipeline can read stdin once",
    ])
}

@Test func aFileSourceReadingAFileSinkOfTheSamePipelineIsAnError() {
    #expect(errors("""
    sources:
      f: { file: { path: out/x.jsonl } }
      g: { file: { path: ../pipelines/dead.jsonl } }
      h: { file: { path: other.jsonl } }
    sinks:
      out: { from: [f, g, h], file: { path: out/../out/x.jsonl } }
    dead_letter: { file: { path: dead.jsonl } }
    """) == [
        "p.yaml:2:22: source 'f' reads the file that sink 'out' writes (/srv/app/pipelines/out/x.jsonl); the pipeline would read its own output forever",
        "p.yaml:3:22: source 'g' reads the file that the dead letter sink writes (/srv/app/pipelines/dead.jsonl); the pipeline would read its own output forever",
    ])
}

@Test func kafkaSinkKeyTemplatesAreChecked() throws {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks:
      k: { from: in, kafka: { brokers: b, topic: t, key: '{a' } }
    """) == [
        "p.yaml:3:54: invalid key template '{a' for 'key' in 'kafka' of sink 'k': unclosed '{' at character 1",
    ])
    // A constant key (no field) is allowed for a Kafka sink.
    let spec = try load("""
    sources: { in: { stdin: {} } }
    sinks: { k: { from: in, kafka: { brokers: b, topic: t, key: 'all-{{x}}' } } }
    """)
    guard case .kafka(let k) = spec.sinks[0].kind else { Issue.record("not kafka"); return }
    #expect(k.key == "all-{{x}}")
}

@Test func anUnsetVariableIsReportedOnceNotAgainAsAWrongType() {
    #expect(errors(minimal("""
    settings:
      batch_size: ${N}
      queue_capacity: x${M}
    """)) == [
        "p.yaml:7:15: environment variable 'N' is not set and has no default",
        "p.yaml:8:20: environment variable 'M' is not set and has no default",
    ])
}

@Test func aKeyLongerThanYAMLAllowsIsReportedClearly() {
    let long = String(repeating: "k", count: 1100)
    #expect(errors(minimal("\(long): 1\n")) == ["p.yaml:6:1: key is too long (1100 characters; a YAML key can have at most 1024)"])
    #expect(errors(minimal("settings: { \(long): 1 }\n")) == [
        "p.yaml:6:13: key is too long (1100 characters; a YAML key can have at most 1024)",
    ])
    #expect(errors(minimal("settings:\n  '\(long)': 1\n")) == [
        "p.yaml:7:3: key is too long (1102 characters; a YAML key can have at most 1024)",
    ])
}

@Test func whenWithMatchAndUDFSaysItTakesOneOfThem() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks: { out: { from: in, when: { match: { a: 1 }, udf: m.f }, stdout: {} } }
    """) == ["p.yaml:2:52: 'when' of sink 'out' takes either 'match' or 'udf', not both"])
}

@Suite struct DeadLetterSettingsTests {
    func problems(_ yaml: String) -> [String] {
        do { _ = try SpecLoader.load(text: yaml, file: "p.yaml", directory: "/tmp", environment: [:]); return [] }
        catch { return error.diagnostics.map(\.description) }
    }

    @Test func deadLetterQueueIsHonouredAndItsFormatAndDropPoliciesAreRejected() throws {
        let base = "sources: { s: { stdin: {} } }\nsinks: { o: { from: s, stdout: {} } }\n"
        let spec = try SpecLoader.load(text: base + "dead_letter: { stderr: {}, queue: { capacity: 7 } }\n", file: "p.yaml", directory: "/tmp", environment: [:])
        #expect(spec.deadLetter?.queue.capacity == 7)
        let fallback = try SpecLoader.load(text: base + "dead_letter: { stderr: {} }\nsettings: { queue_capacity: 10 }\n", file: "p.yaml", directory: "/tmp", environment: [:])
        #expect(fallback.deadLetter?.queue.capacity == 40)
        #expect(problems(base + "dead_letter: { stderr: {}, format: text }\n") ==
                ["p.yaml:3:36: 'format' of 'dead_letter' must be json (a dead letter is a JSON record with the event inside)"])
        #expect(problems(base + "dead_letter: { stderr: {}, queue: { when_full: drop_newest } }\n") ==
                ["p.yaml:3:48: 'when_full' in 'queue' of 'dead_letter' must be block (dead letters are never dropped)"])
    }
}

/// `settings.linger`: how long a batch may wait for more events (the Kafka sink's `linger.ms`).
@Test func lingerIsADurationWithADefaultOfFiveMilliseconds() throws {
    #expect(try load(minimal()).settings.linger == 5)
    #expect(try load(minimal("settings: { linger: 0ms }\n")).settings.linger == 0)
    #expect(try load(minimal("settings: { linger: 20ms }\n")).settings.linger == 20)
    #expect(errors(minimal("settings: { linger: soon }\n")) == [
        "p.yaml:6:21: invalid duration 'soon' for 'linger' in 'settings' (expected e.g. 250ms, 10s, 5m or 1h)",
    ])
}
