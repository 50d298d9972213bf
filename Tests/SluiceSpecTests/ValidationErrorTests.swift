import Testing
@testable import SluiceSpec

// Each validation error, with its exact `file:line:col: message`.

@Test func unknownKeyInTransformSuggestsTheClosestKey() {
    #expect(errors("""
    sources: { plays: { stdin: {} } }
    transforms:
      clean:
        from: plays
        fliter: 'event.x'
    sinks: { out: { from: clean, stdout: {} } }
    """, file: "plays.yaml") == ["plays.yaml:5:5: unknown key 'fliter' in transform 'clean' (did you mean 'filter'?)"])
}

@Test func unknownTopLevelKeySuggestsTheClosestKey() {
    #expect(errors(minimal("setings: {}")) == ["p.yaml:6:1: unknown top-level key 'setings' (did you mean 'settings'?)"])
}

@Test func unknownKeyWithNothingCloseHasNoSuggestion() {
    #expect(errors(minimal("settings: { zzzzzz: 1 }")) == ["p.yaml:6:13: unknown key 'zzzzzz' in 'settings'"])
}

@Test func unknownKeyInsideATypeBody() {
    #expect(errors("""
    sources:
      in: { file: { paht: a.jsonl } }
    sinks: { out: { from: in, stdout: {} } }
    """) == [
        "p.yaml:2:9: missing 'path' in 'file' of source 'in'",
        "p.yaml:2:17: unknown key 'paht' in 'file' of source 'in' (did you mean 'path'?)",
    ])
}

@Test func componentWithoutTypeKey() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    transforms:
      t: { from: in }
    sinks: { out: { from: t, stdout: {} } }
    """) == ["p.yaml:3:3: transform 't' has no type key (expected one of: filter, map, flat_map, project, join, dedup, aggregate)"])
}

@Test func componentWithTwoTypeKeys() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    transforms:
      t: { from: in, filter: 'true', map: { udf: a.b } }
    sinks: { out: { from: t, stdout: {} } }
    """) == ["p.yaml:3:34: transform 't' has more than one type key ('filter' and 'map')"])
}

@Test func componentThatIsNotAMapping() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks:
      out: [stdout]
    """) == ["p.yaml:3:8: expected a mapping for sink 'out', found a sequence"])
}

@Test func wrongValueTypesAreReported() {
    #expect(errors(minimal("""
    udfs: [a]
    settings: { batch_size: many, queue_capacity: 0 }
    """)) == [
        "p.yaml:6:7: expected a mapping for 'udfs', found a sequence",
        "p.yaml:7:25: expected an integer for 'batch_size' in 'settings', found 'many'",
        "p.yaml:7:47: 'queue_capacity' in 'settings' must be at least 1, found 0",
    ])
}

@Test func missingFrom() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks:
      out: { stdout: {} }
    """) == ["p.yaml:3:3: missing 'from' in sink 'out'"])
}

@Test func fromNamingNothingSuggestsAName() {
    #expect(errors("""
    sources: { plays: { stdin: {} } }
    sinks:
      out: { from: [plyas], stdout: {} }
    """) == ["p.yaml:3:17: unknown component 'plyas' in 'from' of sink 'out' (did you mean 'plays'?)"])
}

@Test func fromNamingASink() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    transforms:
      t: { from: [in, out], filter: 'true' }
    sinks:
      out: { from: t, stdout: {} }
    """) == ["p.yaml:3:19: transform 't' cannot read from sink 'out'"])
}

@Test func duplicateComponentNamesAcrossSections() {
    #expect(errors("""
    sources: { x: { stdin: {} } }
    transforms:
      x: { from: x, filter: 'true' }
    sinks:
      out: { from: x, stdout: {} }
    """) == ["p.yaml:3:3: duplicate component name 'x' (also defined at line 1, column 12)"])
}

@Test func cyclesAreNamed() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    transforms:
      a: { from: [in, c], filter: 'true' }
      b: { from: a, filter: 'true' }
      c: { from: b, filter: 'true' }
    sinks:
      out: { from: c, stdout: {} }
    """) == ["p.yaml:3:3: cycle between transforms: a -> b -> c -> a"])
}

@Test func selfLoopIsACycle() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    transforms:
      a: { from: [in, a], filter: 'true' }
    sinks:
      out: { from: a, stdout: {} }
    """) == ["p.yaml:3:3: cycle between transforms: a -> a"])
}

@Test func unusedSource() {
    #expect(errors(minimal("""
    sources:
      in: { stdin: {} }
      spare: { file: { path: x.jsonl } }
    """).replacingOccurrences(of: "pipeline: t\nsources:\n  in: { stdin: {} }\n", with: "pipeline: t\n")) == [
        "p.yaml:6:3: source 'spare' is not used (no transform or sink reads from it)",
    ])
}

@Test func transformReachingNoSinkIsAnError() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    transforms:
      used: { from: in, filter: 'true' }
      dead: { from: used, map: { udf: m.f } }
    sinks:
      out: { from: used, stdout: {} }
    """) == ["p.yaml:4:3: the output of transform 'dead' reaches no sink"])
}

@Test func udfReferenceMustBeModuleDotFunction() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    transforms:
      t: { from: in, map: { udf: enrich } }
      u: { from: t, flat_map: { udf: a.b.c } }
    sinks: { out: { from: u, stdout: {} } }
    """) == [
        "p.yaml:3:30: invalid udf reference 'enrich' for 'udf' in 'map' of transform 't' (expected 'module.function', e.g. 'enrich.add_title')",
        "p.yaml:4:34: invalid udf reference 'a.b.c' for 'udf' in 'flat_map' of transform 'u' (expected 'module.function', e.g. 'enrich.add_title')",
    ])
}

@Test func badMatchOperator() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    transforms:
      t:
        from: in
        filter: { match: { n: { gtt: 3 }, os: [ios] } }
    sinks: { out: { from: t, stdout: {} } }
    """) == [
        "p.yaml:5:29: unknown match operator 'gtt' for field 'n' (did you mean 'gt'?)",
        "p.yaml:5:43: expected a value or a mapping of operators for match field 'os', found a sequence (use { in: [...] })",
    ])
}

@Test func badMatchOperands() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks:
      out:
        from: in
        stdout: {}
        when: { a: { in: 3 }, b: { exists: maybe }, c: { gt: [1] }, d: null }
    """) == [
        "p.yaml:6:22: expected a list of values for operator 'in' of match field 'a', found '3'",
        "p.yaml:6:40: expected true or false for operator 'exists' of match field 'b', found 'maybe'",
        "p.yaml:6:58: expected a number or a string for operator 'gt' of match field 'c', found a sequence",
        "p.yaml:6:68: match field 'd' compares with null, which never matches (use { exists: false } to test for a missing field)",
    ])
}

@Test func badWhenFull() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks:
      out: { from: in, stdout: {}, queue: { capacity: 10, when_full: drop } }
    """) == ["p.yaml:3:66: invalid value 'drop' for 'when_full' in 'queue' of sink 'out' (expected block, drop_newest or dead_letter)"])
}

@Test func badWhenFullSuggestsWhenClose() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks:
      out: { from: in, stdout: {}, queue: { when_full: drop_newset } }
    """) == ["p.yaml:3:52: invalid value 'drop_newset' for 'when_full' in 'queue' of sink 'out' (expected block, drop_newest or dead_letter; did you mean 'drop_newest'?)"])
}

@Test func badSize() {
    #expect(errors(minimal("udfs: { limits: { memory: 64XB } }")) == [
        "p.yaml:6:27: invalid size '64XB' for 'memory' in 'limits' (expected e.g. 64MiB, 512KiB or a number of bytes)",
    ])
}

@Test func badRate() {
    #expect(errors("""
    sources: { g: { generate: { rate: 100/week, udf: gen.ev } } }
    sinks: { out: { from: g, stdout: {} } }
    """) == ["p.yaml:1:35: invalid rate '100/week' for 'rate' in 'generate' of source 'g' (expected e.g. 100/s, 600/m or 10/h)"])
}

@Test func badEnumValuesSuggest() {
    #expect(errors(minimal("udfs: { reload: wacth }\nsettings: { workers: lots }")) == [
        "p.yaml:6:17: invalid value 'wacth' for 'reload' in 'udfs' (expected watch, signal or off; did you mean 'watch'?)",
        "p.yaml:7:22: invalid value 'lots' for 'workers' in 'settings' (expected auto or a number)",
    ])
}

@Test func unsupportedFeaturesSayNotSupportedYet() {
    #expect(errors("""
    sources:
      k: { kafka: { topics: [a] } }
      in: { stdin: {} }
    sinks:
      out: { from: [in, k], stdout: {} }
    settings: { checkpoint: { every: 10s, kepp: 3 }, admin: { listen: x } }
    """) == [
        "p.yaml:2:8: missing 'brokers' in 'kafka' of source 'k'",
        "p.yaml:6:39: unknown key 'kepp' in 'checkpoint' in 'settings' (did you mean 'keep'?)",
        "p.yaml:6:67: invalid address 'x' for 'listen' in 'admin' (expected HOST:PORT, e.g. 127.0.0.1:9464)",
    ])
}

@Test func deadLetterTakesNoFrom() {
    #expect(errors(minimal("dead_letter: { from: in, file: { path: dead.jsonl } }")) == [
        "p.yaml:6:16: 'dead_letter' takes no 'from' (it receives every rejected event)",
    ])
}

@Test func deadLetterIsAReservedName() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks: { dead_letter: { from: in, stdout: {} } }
    """) == ["p.yaml:2:10: 'dead_letter' is reserved for the dead letter sink; choose another name"])
}

@Test func missingSourcesAndSinks() {
    #expect(errors("pipeline: x\n") == [
        "p.yaml:1:1: missing 'sources' (a pipeline needs at least one source)",
        "p.yaml:1:1: missing 'sinks' (a pipeline needs at least one sink)",
    ])
}

@Test func emptySpec() {
    #expect(errors("") == ["p.yaml: the spec is empty"])
    #expect(errors("# only a comment\n") == ["p.yaml: the spec is empty"])
}

@Test func topLevelMustBeAMapping() {
    #expect(errors("- a\n- b\n") == ["p.yaml:1:1: expected a mapping for the spec, found a sequence"])
}

@Test func emptyFilterExpression() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    transforms: { t: { from: in, filter: '' } }
    sinks: { out: { from: t, stdout: {} } }
    """) == ["p.yaml:2:38: 'filter' of transform 't' must not be empty"])
}

@Test func testsNameUnknownComponentsWithSuggestions() {
    #expect(errors(minimal("""
    tests:
      - name: one
        input: { inn: [ { a: 1 } ] }
        expect: { outt: [] }
      - input: { in: [ 5 ] }
        expect: {}
    """)) == [
        "p.yaml:8:14: unknown source 'inn' in 'input' of test 'one' (did you mean 'in'?)",
        "p.yaml:9:15: unknown sink 'outt' in 'expect' of test 'one' (did you mean 'out'?)",
        "p.yaml:10:5: missing 'name' in test #2",
        "p.yaml:10:20: expected an event (a mapping) in input 'in' of test #2, found '5'",
    ])
}

@Test func bareLookingNumbersInConfigMayBeQuoted() throws {
    let spec = try load(minimal(#"settings: { batch_size: "32" }"#))
    #expect(spec.settings.batchSize == 32)
}
