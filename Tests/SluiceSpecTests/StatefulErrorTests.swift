import Testing
@testable import SluiceSpec

// Stateful transform errors, each with its exact `file:line:col: message`. The transform is line 5 of
// `statefulSpec` (sources imps and plays; the sink reads t, imps and plays, so no source is unused).

/// The diagnostics of a spec whose only transform is `transform` (named t, on line 5).
func statefulErrors(_ transform: String) -> [String] {
    errors(statefulSpec(transform, sinkFrom: "[t, imps, plays]"))
}

/// Join: a top-level from, missing parts, bad values, malformed key templates.
@Test func joinErrors() {
    #expect(statefulErrors(#"  t: { from: plays, join: { left: { from: imps, key: '{a}' }, right: { from: plays, key: '{a}' }, within: 1s } }"#) == [
        "p.yaml:5:8: transform 't' takes no 'from' (the inputs of a join are 'left.from' and 'right.from')",
    ])
    #expect(statefulErrors(#"  t: { join: { left: { from: imps }, right: { key: '{a}' } } }"#) == [
        "p.yaml:5:8: missing 'within' in 'join' of transform 't'",
        "p.yaml:5:16: missing 'key' in 'left' of 'join' of transform 't'",
        "p.yaml:5:38: missing 'from' in 'right' of 'join' of transform 't'",
    ])
    #expect(statefulErrors(#"  t: { join: { left: { from: imps, key: '{a}' }, right: { from: plays, key: '{a}' }, within: 0s, emit: eagre, unmatched: keep, merge: { udf: nope } } }"#) == [
        "p.yaml:5:94: 'within' in 'join' of transform 't' must be greater than 0, found 0s",
        "p.yaml:5:104: invalid value 'eagre' for 'emit' in 'join' of transform 't' (expected complete or eager; did you mean 'eager'?)",
        "p.yaml:5:122: invalid value 'keep' for 'unmatched' in 'join' of transform 't' (expected drop or emit)",
        "p.yaml:5:142: invalid udf reference 'nope' for 'udf' in 'merge' in 'join' of transform 't' (expected 'module.function', e.g. 'enrich.add_title')",
    ])
    #expect(statefulErrors(#"  t: { join: { left: { from: imps, key: '{a' }, right: { from: plays, key: 'abc' }, within: soon, withn: 1s } }"#) == [
        "p.yaml:5:41: invalid key template '{a' for 'key' in 'left' of 'join' of transform 't': unclosed '{' at character 1",
        "p.yaml:5:76: key template 'abc' for 'key' in 'right' of 'join' of transform 't' names no field (e.g. '{profile_id}')",
        "p.yaml:5:93: invalid duration 'soon' for 'within' in 'join' of transform 't' (expected e.g. 250ms, 10s, 5m or 1h)",
        "p.yaml:5:99: unknown key 'withn' in 'join' of transform 't' (did you mean 'within'?)",
    ])
    #expect(statefulErrors(#"  t: { join: { left: [imps], right: { from: [plays, imps], key: '{a..b}' }, within: 1s, merge: {} } }"#) == [
        "p.yaml:5:22: expected a mapping for 'left' of 'join' of transform 't', found a sequence",
        "p.yaml:5:45: 'from' in 'right' of 'join' of transform 't' must name exactly one component, found a list of 2",
        "p.yaml:5:65: invalid field path 'a..b' for key template '{a..b}' for 'key' in 'right' of 'join' of transform 't' (expected names separated by '.', e.g. 'client.os')",
        "p.yaml:5:96: missing 'udf' in 'merge' in 'join' of transform 't' (e.g. { udf: module.function })",
    ])
    #expect(statefulErrors(#"  t: { join: { left: { from: imps, key: '{a}}' }, right: { from: plays, key: '}' }, within: 1s } }"#) == [
        "p.yaml:5:41: invalid key template '{a}}' for 'key' in 'left' of 'join' of transform 't': lone '}' (write '}}') at character 4",
        "p.yaml:5:78: invalid key template '}' for 'key' in 'right' of 'join' of transform 't': lone '}' (write '}}') at character 1",
    ])
}

/// Dedup: from given twice or not at all, missing and empty keys, unknown keys.
@Test func dedupErrors() {
    #expect(statefulErrors(#"  t: { from: plays, dedup: { from: imps, key: '{id}', within: 1m } }"#) == [
        "p.yaml:5:30: transform 't' has 'from' both at the transform and in 'dedup' (give it once)",
    ])
    #expect(statefulErrors(#"  t: { dedup: { key: '{id}' } }"#) == [
        "p.yaml:5:3: missing 'from' in transform 't'",
        "p.yaml:5:8: missing 'within' in 'dedup' of transform 't'",
    ])
    #expect(statefulErrors(#"  t: { dedup: { from: plays, within: 1m, key: '' } }"#) == [
        "p.yaml:5:47: 'key' in 'dedup' of transform 't' must not be empty",
    ])
}

/// Parallelism and state on stateful transforms, and on stateless ones (an error).
@Test func commonStatefulKeyErrors() {
    #expect(statefulErrors(#"  t: { from: plays, dedup: { key: '{id}', within: 1m }, parallelism: 0, state: { max_keys: 0, max_bytes: lots, max_key: 1 } }"#) == [
        "p.yaml:5:70: 'parallelism' of transform 't' must be at least 1, found 0",
        "p.yaml:5:92: 'max_keys' in 'state' of transform 't' must be at least 1, found 0",
        "p.yaml:5:106: invalid size 'lots' for 'max_bytes' in 'state' of transform 't' (expected e.g. 256MiB, 512KiB or a number of bytes)",
        "p.yaml:5:112: unknown key 'max_key' in 'state' of transform 't' (did you mean 'max_keys'?)",
    ])
    #expect(statefulErrors(#"  t: { from: plays, filter: 'true', parallelism: 2, state: {} }"#) == [
        "p.yaml:5:37: 'parallelism' applies only to stateful transforms (join, dedup, aggregate), not to 'filter' (in transform 't')",
        "p.yaml:5:53: 'state' applies only to stateful transforms (join, dedup, aggregate), not to 'filter' (in transform 't')",
    ])
    #expect(statefulErrors(#"  t: { from: plays, map: { udf: a.b }, state: { max_keys: 1 } }"#) == [
        "p.yaml:5:40: 'state' applies only to stateful transforms (join, dedup, aggregate), not to 'map' (in transform 't')",
    ])
}

/// Aggregate windows: on_window_close without a window, sliding rules, unknown forms.
@Test func aggregateWindowErrors() {
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: { n: count }, emit: on_window_close } }"#) == [
        "p.yaml:5:89: 'emit' in 'aggregate' of transform 't' cannot be on_window_close with 'window: none' (there is no window to close; use on_change or { every: D })",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: { sliding: 1m }, reduce: { n: count } } }"#) == [
        "p.yaml:5:55: missing 'every' in 'window' in 'aggregate' of transform 't' (a sliding window is { sliding: SIZE, every: STEP })",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: { sliding: 1m, every: 2m }, reduce: { n: count } } }"#) == [
        "p.yaml:5:77: 'every' in 'window' in 'aggregate' of transform 't' (2m) must not exceed the window size (1m)",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: { tumbling: 1m, every: 1s }, reduce: { n: count } } }"#) == [
        "p.yaml:5:71: 'every' in 'window' in 'aggregate' of transform 't' applies only to sliding windows",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: { tumbling: 1m, session: 1m }, reduce: { n: count } } }"#) == [
        "p.yaml:5:71: 'window' in 'aggregate' of transform 't' takes one of 'tumbling', 'sliding' or 'session', not both 'tumbling' and 'session'",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: hourly, reduce: { n: count } } }"#) == [
        "p.yaml:5:55: invalid window 'hourly' for 'window' in 'aggregate' of transform 't' (expected { tumbling: D }, { sliding: D, every: D }, { session: D } or none)",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: {}, reduce: { n: count } } }"#) == [
        "p.yaml:5:55: 'window' in 'aggregate' of transform 't' needs 'tumbling', 'sliding' or 'session' (expected { tumbling: D }, { sliding: D, every: D }, { session: D } or none)",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: { tumblng: 1m }, reduce: { n: count } } }"#) == [
        "p.yaml:5:57: unknown key 'tumblng' in 'window' in 'aggregate' of transform 't' (did you mean 'tumbling'?)",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: { every: 1m }, reduce: { n: count } } }"#) == [
        "p.yaml:5:55: 'window' in 'aggregate' of transform 't' has 'every' but no 'sliding' size (expected { sliding: D, every: D })",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: { sliding: 0s, every: 0s }, reduce: { n: count } } }"#) == [
        "p.yaml:5:66: 'sliding' in 'window' in 'aggregate' of transform 't' must be greater than 0, found 0s",
    ])
}

/// Aggregate reducers: the UDF form alone, bare operations, unknown operations, reserved names.
@Test func aggregateReduceErrors() {
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: { udf: a.b, n: count } } }"#) == [
        "p.yaml:5:71: a 'udf' reducer must be alone in 'reduce' in 'aggregate' of transform 't' (it replaces the declarative reducers)",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: { a: sum, b: { count: x }, c: { summ: x }, d: cnt, key: count, e: { sum: x, max: y }, f: [x], g: { min: 'a..b' } } } }"#) == [
        "p.yaml:5:74: 'sum' needs a field path for output field 'a' in 'reduce' in 'aggregate' of transform 't' (e.g. { sum: duration_ms })",
        "p.yaml:5:84: 'count' takes no field path in output field 'b' in 'reduce' in 'aggregate' of transform 't' (write 'b: count')",
        "p.yaml:5:101: unknown operation 'summ' for output field 'c' in 'reduce' in 'aggregate' of transform 't' (did you mean 'sum'?)",
        "p.yaml:5:115: invalid reducer 'cnt' for output field 'd' in 'reduce' in 'aggregate' of transform 't' (expected count or { OP: PATH } with OP one of sum, min, max, avg, first, last, count_distinct or collect)",
        "p.yaml:5:120: output field 'key' in 'reduce' in 'aggregate' of transform 't' clashes with the 'key' field of the output event",
        "p.yaml:5:135: expected count or { OP: PATH } (one operation) for output field 'e' in 'reduce' in 'aggregate' of transform 't', found 2 operations",
        "p.yaml:5:158: expected count or { OP: PATH } (one operation) for output field 'f' in 'reduce' in 'aggregate' of transform 't', found a sequence",
        "p.yaml:5:173: invalid field path 'a..b' for 'min' of output field 'g' in 'reduce' in 'aggregate' of transform 't' (expected names separated by '.', e.g. 'client.os')",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: {} } }"#) == [
        "p.yaml:5:69: 'reduce' in 'aggregate' of transform 't' has no reducers (e.g. { plays: count, watched_ms: { sum: duration_ms } })",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: [count] } }"#) == [
        "p.yaml:5:69: expected a mapping of output field to reducer (or { udf: module.function }) for 'reduce' in 'aggregate' of transform 't', found a sequence",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: { udf: nope } } }"#) == [
        "p.yaml:5:76: invalid udf reference 'nope' for 'udf' in 'reduce' in 'aggregate' of transform 't' (expected 'module.function', e.g. 'enrich.add_title')",
    ])
}

/// Aggregate emit values, missing keys, wrong body types.
@Test func aggregateEmitAndMissingErrors() {
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: { n: count }, emit: sometimes } }"#) == [
        "p.yaml:5:89: invalid value 'sometimes' for 'emit' in 'aggregate' of transform 't' (expected on_window_close, on_change or { every: D })",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: { n: count }, emit: { evry: 5s } } }"#) == [
        "p.yaml:5:91: unknown key 'evry' in 'emit' in 'aggregate' of transform 't' (did you mean 'every'?)",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: { n: count }, emit: { every: 0s } } }"#) == [
        "p.yaml:5:98: 'every' in 'emit' in 'aggregate' of transform 't' must be greater than 0, found 0s",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays, key: '{id}', window: none, reduce: { n: count }, emit: on_chnage } }"#) == [
        "p.yaml:5:89: invalid value 'on_chnage' for 'emit' in 'aggregate' of transform 't' (expected on_window_close, on_change or { every: D }; did you mean 'on_change'?)",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { from: plays } }"#) == [
        "p.yaml:5:8: missing 'key' in 'aggregate' of transform 't'",
        "p.yaml:5:8: missing 'window' in 'aggregate' of transform 't' (e.g. window: { tumbling: 1m } or window: none)",
        "p.yaml:5:8: missing 'reduce' in 'aggregate' of transform 't'",
    ])
    #expect(statefulErrors(#"  t: { aggregate: { key: '{id}', window: none, reduce: { n: count } } }"#) == [
        "p.yaml:5:3: missing 'from' in transform 't'",
    ])
    #expect(statefulErrors(#"  t: { aggregate: [x] }"#) == [
        "p.yaml:5:19: expected a mapping for 'aggregate' of transform 't', found a sequence",
    ])
    #expect(statefulErrors(#"  t: { join: x }"#) == [
        "p.yaml:5:14: expected a mapping for 'join' of transform 't', found 'x'",
    ])
    #expect(statefulErrors(#"  t: { dedup: { from: plays, key: '{id}', within: 1m, windw: 1 } }"#) == [
        "p.yaml:5:55: unknown key 'windw' in 'dedup' of transform 't'",
    ])
}
/// Source `time`, `lateness`, `idle` and `settings.max_drift`.
@Test func eventTimeErrors() {
    #expect(errors("""
    sources:
      in: { stdin: {}, time: 'a..b', lateness: soon, idle: 0s }
      j: { file: { path: j.jsonl }, time: [ts] }
    sinks: { out: { from: [in, j], stdout: {} } }
    settings: { max_drift: 5 }
    """) == [
        "p.yaml:2:26: invalid field path 'a..b' for 'time' of source 'in' (expected names separated by '.', e.g. 'client.os')",
        "p.yaml:2:44: invalid duration 'soon' for 'lateness' of source 'in' (expected e.g. 250ms, 10s, 5m or 1h)",
        "p.yaml:2:56: 'idle' of source 'in' must be greater than 0, found 0s",
        "p.yaml:3:39: expected a string for 'time' of source 'j', found a sequence",
        "p.yaml:5:24: invalid duration '5' for 'max_drift' in 'settings' (expected e.g. 250ms, 10s, 5m or 1h)",
    ])
}

/// A misspelt stateful type key is reported once (its `from` may be inside the body, so no "missing 'from'").
@Test func misspeltStatefulTypeKey() {
    #expect(statefulErrors(#"  t: { dedupe: { from: plays, key: '{id}', within: 1m } }"#) == [
        "p.yaml:5:8: unknown key 'dedupe' in transform 't' (did you mean 'dedup'?)",
    ])
    #expect(statefulErrors(#"  t: { from: plays, agregate: { key: '{id}' } }"#) == [
        "p.yaml:5:21: unknown key 'agregate' in transform 't' (did you mean 'aggregate'?)",
    ])
}
