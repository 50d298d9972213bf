import Testing
@testable import SluiceSpec
import SluiceCore

// Stateful transforms, event time and state limits: every accepted form parses into exactly these values.

/// Two file sources `imps` and `plays`, the given transforms, and a sink reading `out_from`.
func statefulSpec(_ transforms: String, sinkFrom: String) -> String {
    """
    sources:
      imps: { file: { path: imps.jsonl } }
      plays: { file: { path: plays.jsonl } }
    transforms:
    \(transforms)
    sinks: { out: { from: \(sinkFrom), stdout: {} } }
    """
}

func onlyTransform(_ spec: PipelineSpec) -> TransformSpec? { spec.transforms.first }

@Test func sourceEventTimeAndMaxDrift() throws {
    let spec = try load("""
    sources:
      in:
        stdin: {}
        time: client.ts
        lateness: 10s
        idle: 1m
      other: { file: { path: x.jsonl } }
    sinks: { out: { from: [in, other], stdout: {} } }
    settings: { max_drift: 2m }
    """)
    let t = spec.sources[0].time
    #expect(t.field == ["client", "ts"])
    #expect(t.lateness == 10_000)
    #expect(t.idle == 60_000)
    let d = spec.sources[1].time
    #expect(d.field == nil && d.lateness == 0 && d.idle == 30_000)
    #expect(spec.settings.maxDrift == 120_000)
    #expect(try load(minimal()).settings.maxDrift == 300_000)
}

@Test func joinWithEveryOption() throws {
    let spec = try load(statefulSpec("""
      conv:
        join:
          left:  { from: imps, key: '{profile_id}:{title_id}' }
          right: { from: plays, key: '{profile_id}:{title_id}' }
          within: 1h
          merge: { udf: joiner.merge }
          emit: eager
          unmatched: emit
        parallelism: 4
        state: { max_keys: 1000, max_bytes: 256MiB }
    """, sinkFrom: "conv"))
    let t = try #require(onlyTransform(spec))
    #expect(t.from == ["imps", "plays"])
    #expect(t.isStateful)
    #expect(t.parallelism == 4)
    #expect(t.state == StateLimits(maxKeys: 1000, maxBytes: 256 << 20))
    guard case .join(let j) = t.kind else { Issue.record("not a join"); return }
    #expect(j.left.from == "imps" && j.right.from == "plays")
    #expect(j.left.key.description == "{profile_id}:{title_id}")
    #expect(j.right.key.fields == ["profile_id", "title_id"])
    #expect(j.left.location == SourceLocation(file: "p.yaml", line: 7, column: 33))
    #expect(j.within == 3_600_000)
    #expect(j.merge?.description == "joiner.merge")
    #expect(j.emit == .eager && j.unmatched == .emit)
    #expect(t.keyedInputs.map(\.from) == ["imps", "plays"])
}

@Test func joinDefaultsAndSelfJoin() throws {
    let spec = try load(statefulSpec("""
      self_join:
        join:
          left: { from: plays, key: '{a}' }
          right: { from: plays, key: '{b.c}' }
          within: 90s
      other:
        from: imps
        filter: 'true'
    """, sinkFrom: "[self_join, other]"))
    let t = try #require(onlyTransform(spec))
    #expect(t.from == ["plays"])
    #expect(t.parallelism == nil)
    #expect(t.state == StateLimits())
    guard case .join(let j) = t.kind else { Issue.record("not a join"); return }
    #expect(j.within == 90_000)
    #expect(j.merge == nil)
    #expect(j.emit == .complete && j.unmatched == .drop)
    #expect(j.right.key.fields == ["b.c"])
}

@Test func dedupWithFromInsideOrOutside() throws {
    let spec = try load(statefulSpec("""
      a: { dedup: { from: plays, key: '{event_id}', within: 10m } }
      b:
        from: imps
        dedup: { key: 'imp-{id}', within: 250ms }
        parallelism: 2
    """, sinkFrom: "[a, b]"))
    #expect(spec.transforms.map(\.from) == [["plays"], ["imps"]])
    guard case .dedup(let a) = spec.transforms[0].kind, case .dedup(let b) = spec.transforms[1].kind else {
        Issue.record("not dedups"); return
    }
    #expect(a.input.from == "plays" && a.input.key.fields == ["event_id"] && a.within == 600_000)
    #expect(b.input.from == "imps" && b.input.key.description == "imp-{id}" && b.within == 250)
    #expect(spec.transforms[1].parallelism == 2)
}

@Test func aggregateWindowsReducersAndEmits() throws {
    let spec = try load(statefulSpec("""
      per_minute:
        aggregate:
          from: plays
          key: '{title_id}'
          window: { tumbling: 1m }
          reduce: { plays: count, watched_ms: { sum: duration_ms }, last_ts: { max: ts },
                    viewers: { count_distinct: profile_id }, low: { min: x }, mean: { avg: m.n },
                    f: { first: a }, l: { last: a }, all: { collect: tags } }
      sliding:
        aggregate: { from: plays, key: '{t}', window: { sliding: 10m, every: 1m }, reduce: { n: count }, emit: on_change }
      sessions:
        from: imps
        aggregate: { key: '{p}', window: { session: 30m }, reduce: { n: count }, emit: { every: 5s } }
      views:
        aggregate:
          from: imps
          key: '{asset_id}'
          window: none
          reduce: { udf: views.apply }
      views_every:
        aggregate: { from: imps, key: '{asset_id}', window: none, reduce: { udf: views.apply }, emit: { every: 5s } }
    """, sinkFrom: "[per_minute, sliding, sessions, views, views_every]"))
    let aggs: [AggregateSpec] = spec.transforms.compactMap {
        if case .aggregate(let a) = $0.kind { return a } else { return nil }
    }
    try #require(aggs.count == 5)
    #expect(aggs.map(\.input.from) == ["plays", "plays", "imps", "imps", "imps"])
    #expect(aggs.map(\.window) == [.tumbling(size: 60_000), .sliding(size: 600_000, every: 60_000),
                                   .session(gap: 1_800_000), .none, .none])
    #expect(aggs.map(\.emit) == [.onWindowClose, .onChange, .every(5000), .onChange, .every(5000)])
    guard case .reducers(let r) = aggs[0].reduce else { Issue.record("not reducers"); return }
    #expect(r.map(\.output) == ["plays", "watched_ms", "last_ts", "viewers", "low", "mean", "f", "l", "all"])
    #expect(r.map(\.op) == [.count, .sum, .max, .countDistinct, .min, .avg, .first, .last, .collect])
    #expect(r.map(\.path) == [nil, ["duration_ms"], ["ts"], ["profile_id"], ["x"], ["m", "n"], ["a"], ["a"], ["tags"]])
    guard case .udf(let u) = aggs[3].reduce else { Issue.record("not a udf"); return }
    #expect(u.description == "views.apply")
}

@Test func statefulInputsCountForTheGraph() {
    // imps is read only by the join's left side, so it is used; the unknown name is located inside 'right'.
    #expect(errors(statefulSpec("""
      j:
        join:
          left: { from: imps, key: '{a}' }
          right: { from: plyas, key: '{a}' }
          within: 1s
      k: { from: plays, filter: 'true' }
    """, sinkFrom: "[j, k]")) == [
        "p.yaml:8:22: unknown component 'plyas' in 'from' of transform 'j' (did you mean 'plays'?)",
    ])
}

@Test func cycleThroughAJoinIsReported() {
    #expect(errors(statefulSpec("""
      j:
        join:
          left: { from: imps, key: '{a}' }
          right: { from: back, key: '{a}' }
          within: 1s
      back: { from: j, filter: 'true' }
      p: { from: plays, filter: 'true' }
    """, sinkFrom: "[j, p]")) == [
        "p.yaml:5:3: cycle between transforms: j -> back -> j",
    ])
}
