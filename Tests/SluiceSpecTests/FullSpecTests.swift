import Testing
@testable import SluiceSpec
import SluiceCore

let routerSpec = """
pipeline: plays-router
udfs:
  dir: ../udfs
  reload: watch
  limits: { instructions: 500000, memory: 32MiB }
sources:
  plays:
    file: { path: data/plays.jsonl, follow: false }
    format: json
  gen: { generate: { count: 1000, rate: 100/s, udf: gen.play_event } }
transforms:
  plays_only:
    from: plays
    filter: 'event.event_type == "play" and (event.duration_ms or 0) > 1000'
  valid:
    from: [plays_only, gen]
    filter:
      match: { event_type: play, duration_ms: { gt: 1000 }, client.os: { in: [ios, android] } }
  shaped:
    from: valid
    project: { profile_id: profile_id, title_id: title_id, os: client.os }
  enriched:
    from: shaped
    map: { udf: enrich.add_title }
sinks:
  archive:
    from: [enriched]
    file: { path: out/plays.jsonl }
  us_plays:
    from: enriched
    when: 'event.country == "US"'
    file: { path: /var/out/us.jsonl }
    queue: { capacity: 10, when_full: drop_newest }
  console:
    from: enriched
    when: { os: ios }
    stdout: {}
    format: text
dead_letter: { file: { path: out/dead.jsonl } }
settings: { queue_capacity: 64, batch_size: 128, workers: 4 }
tests:
  - name: plays are enriched
    input: { plays: [ { event_type: play, title_id: 7, duration_ms: 5000, ratio: 1.5, ok: true, gone: null, tilde: ~, quoted: "7" } ] }
    expect: { archive: [ { title_id: 7, title: "Title 7" } ], dead_letter: [] }
"""

@Test func fullSpecLoadsIntoTheExactModel() throws {
    let spec = try load(routerSpec, file: "pipelines/plays.yaml")
    #expect(spec.name == "plays-router")
    #expect(spec.file == "pipelines/plays.yaml")
    #expect(spec.directory == "/srv/app/pipelines")
    #expect(spec.udfs.dir == "/srv/app/udfs")
    #expect(spec.udfs.reload == .watch)
    #expect(spec.udfs.instructionLimit == 500_000)
    #expect(spec.udfs.memoryLimit == 32 << 20)

    #expect(spec.sources.map(\.name) == ["plays", "gen"])
    guard case .file(let path, let follow) = spec.sources[0].kind else { Issue.record("plays"); return }
    #expect(path == "/srv/app/pipelines/data/plays.jsonl")
    #expect(follow == false)
    #expect(spec.sources[0].format == .json)
    #expect(spec.sources[0].location.description == "pipelines/plays.yaml:7:3")
    guard case .generate(let count, let rate, let udf) = spec.sources[1].kind else { Issue.record("gen"); return }
    #expect(count == 1000)
    #expect(rate == 100)
    #expect(udf.description == "gen.play_event")
    #expect(udf.location.description == "pipelines/plays.yaml:10:53")

    #expect(spec.transforms.map(\.name) == ["plays_only", "valid", "shaped", "enriched"])
    #expect(spec.transforms[1].from == ["plays_only", "gen"])
    guard case .filter(.lua(let expr, let exprAt)) = spec.transforms[0].kind else { Issue.record("plays_only"); return }
    #expect(expr == #"event.event_type == "play" and (event.duration_ms or 0) > 1000"#)
    #expect(exprAt.line == 14 && exprAt.column == 13)
    guard case .filter(.match(let m)) = spec.transforms[1].kind else { Issue.record("valid"); return }
    #expect(m.clauses.count == 3)
    #expect(m.clauses[0].path == ["event_type"])
    guard case .eq(.string("play")) = m.clauses[0].op else { Issue.record("eq"); return }
    guard case .gt(.int(1000)) = m.clauses[1].op else { Issue.record("gt"); return }
    #expect(m.clauses[2].path == ["client", "os"])
    guard case .isIn(let values) = m.clauses[2].op else { Issue.record("in"); return }
    #expect(values == [.string("ios"), .string("android")])
    guard case .project(let fields) = spec.transforms[2].kind else { Issue.record("shaped"); return }
    #expect(fields.map(\.output) == ["profile_id", "title_id", "os"])
    #expect(fields.map(\.path) == [["profile_id"], ["title_id"], ["client", "os"]])
    guard case .map(let add) = spec.transforms[3].kind else { Issue.record("enriched"); return }
    #expect(add.module == "enrich" && add.function == "add_title")

    #expect(spec.sinks.map(\.name) == ["archive", "us_plays", "console"])
    guard case .file(let archive) = spec.sinks[0].kind else { Issue.record("archive"); return }
    #expect(archive == "/srv/app/pipelines/out/plays.jsonl")
    #expect(spec.sinks[0].queue.capacity == 64)
    #expect(spec.sinks[0].queue.whenFull == .block)
    #expect(spec.sinks[0].when == nil)
    guard case .file(let us) = spec.sinks[1].kind else { Issue.record("us"); return }
    #expect(us == "/var/out/us.jsonl")
    #expect(spec.sinks[1].queue.capacity == 10)
    #expect(spec.sinks[1].queue.whenFull == .dropNewest)
    guard case .lua(let cond, _)? = spec.sinks[1].when else { Issue.record("when"); return }
    #expect(cond == #"event.country == "US""#)
    guard case .stdout = spec.sinks[2].kind, case .match(let w)? = spec.sinks[2].when else { Issue.record("console"); return }
    #expect(spec.sinks[2].format == .text)
    #expect(w.clauses.count == 1 && w.clauses[0].path == ["os"])

    guard let dl = spec.deadLetter, case .file(let dead) = dl.kind else { Issue.record("dead_letter"); return }
    #expect(dl.name == "dead_letter")
    #expect(dl.from.isEmpty)
    #expect(dead == "/srv/app/pipelines/out/dead.jsonl")

    #expect(spec.settings.queueCapacity == 64)
    #expect(spec.settings.batchSize == 128)
    #expect(spec.settings.workers == 4)

    #expect(spec.tests.count == 1)
    let t = spec.tests[0]
    #expect(t.name == "plays are enriched")
    #expect(t.location.line == 42 && t.location.column == 5)
    #expect(t.input.count == 1 && t.input[0].0 == "plays")
    let event = t.input[0].1[0]
    #expect(event["event_type"] == .string("play"))
    #expect(event["title_id"] == .int(7))
    #expect(event["duration_ms"] == .int(5000))
    #expect(event["ratio"] == .double(1.5))
    #expect(event["ok"] == .bool(true))
    #expect(event["gone"] == .null)
    #expect(event["tilde"] == .null)
    #expect(event["quoted"] == .string("7"))
    #expect(event.jsonText == #"{"event_type":"play","title_id":7,"duration_ms":5000,"ratio":1.5,"ok":true,"gone":null,"tilde":null,"quoted":"7"}"#)
    #expect(t.expect.map(\.0) == ["archive", "dead_letter"])
    #expect(t.expect[0].1 == [.object([("title_id", .int(7)), ("title", .string("Title 7"))])])
    #expect(t.expect[1].1.isEmpty)
}

@Test func defaultsApplyWhenKeysAreOmitted() throws {
    let spec = try load("""
    sources:
      in: { stdin: }
    sinks:
      out: { from: in, stderr: {} }
    """, file: "dir/my-pipe.yaml")
    #expect(spec.name == "my-pipe")
    #expect(spec.udfs.dir == "/srv/app/udfs")
    #expect(spec.udfs.reload == .off)
    #expect(spec.udfs.instructionLimit == 1_000_000)
    #expect(spec.udfs.memoryLimit == 64 << 20)
    #expect(spec.settings.queueCapacity == 1024)
    #expect(spec.settings.batchSize == 256)
    #expect(spec.settings.workers == nil)
    #expect(spec.sinks[0].queue.capacity == 1024)
    #expect(spec.sinks[0].format == .json)
    #expect(spec.deadLetter == nil)
    #expect(spec.tests.isEmpty)
    guard case .stderr = spec.sinks[0].kind, case .stdin = spec.sources[0].kind else { Issue.record("kinds"); return }
}

@Test func sinkQueueCapacityDefaultsToSettings() throws {
    let spec = try load(minimal("settings: { queue_capacity: 7, workers: auto }"))
    #expect(spec.sinks[0].queue.capacity == 7)
    #expect(spec.settings.workers == nil)
}

@Test func projectAsAListKeepsTheLastPathSegmentAsName() throws {
    let spec = try load("""
    sources: { in: { stdin: {} } }
    transforms:
      p: { from: in, project: [id, client.os] }
    sinks: { out: { from: p, stdout: {} } }
    """)
    guard case .project(let f) = spec.transforms[0].kind else { Issue.record("project"); return }
    #expect(f.map(\.output) == ["id", "os"])
    #expect(f.map(\.path) == [["id"], ["client", "os"]])
}

@Test func filterAcceptsAUDFAndSinkWhenAcceptsMatchAndUDFWrappers() throws {
    let spec = try load("""
    sources: { in: { stdin: {} } }
    transforms:
      v: { from: in, filter: { udf: checks.is_valid } }
      x: { from: v, flat_map: { udf: tags.explode } }
    sinks:
      a: { from: x, stdout: {}, when: { match: { n: { gte: 2, lt: 10 }, tag: { exists: true } } } }
      b: { from: x, stdout: {}, when: { udf: route.is_us } }
    """)
    guard case .filter(.udf(let u)) = spec.transforms[0].kind else { Issue.record("udf filter"); return }
    #expect(u.description == "checks.is_valid")
    guard case .flatMap(let fm) = spec.transforms[1].kind else { Issue.record("flat_map"); return }
    #expect(fm.description == "tags.explode")
    guard case .match(let m)? = spec.sinks[0].when else { Issue.record("when match"); return }
    #expect(m.clauses.count == 3)
    guard case .gte(.int(2)) = m.clauses[0].op, case .lt(.int(10)) = m.clauses[1].op, case .exists(true) = m.clauses[2].op
    else { Issue.record("ops"); return }
    guard case .udf(let r)? = spec.sinks[1].when else { Issue.record("when udf"); return }
    #expect(r.description == "route.is_us")
}

@Test func textSourcesTakeLinesInTests() throws {
    let spec = try load("""
    sources: { lines: { stdin: {}, format: text } }
    sinks: { out: { from: lines, stdout: {}, format: text } }
    tests:
      - name: lines
        input: { lines: [hello, 7, "x: y"] }
        expect: { out: [hello, 7] }
    """)
    #expect(spec.tests[0].input[0].1 == [.string("hello"), .string("7"), .string("x: y")])
    #expect(spec.tests[0].expect[0].1 == [.string("hello"), .string("7")])
}

@Test func yamlAnchorsAndMergeKeysAreSupported() throws {
    let spec = try load("""
    x-queue: &q { capacity: 5, when_full: dead_letter }
    sources: { in: { stdin: {} } }
    sinks:
      a: { from: in, stdout: {}, queue: *q }
    """)
    #expect(spec.sinks[0].queue.capacity == 5)
    #expect(spec.sinks[0].queue.whenFull == .deadLetter)
}
