import Testing
@testable import SluiceSpec

@Test func fileLookupsParse() throws {
    let spec = try load(minimal("""
    lookups:
      titles: { file: { path: ../data/titles.csv, key: title_id }, refresh: 60s }
      users: { file: { path: /etc/users.jsonl, key: id }, refresh: watch }
      once: { file: { path: x.json, key: k } }
    """))
    #expect(spec.lookups.map(\.name) == ["titles", "users", "once"])
    guard case .file(let t) = spec.lookups[0].kind, case .file(let u) = spec.lookups[1].kind, case .file(let o) = spec.lookups[2].kind else {
        Issue.record("not file lookups"); return
    }
    #expect(t == FileLookupSpec(path: "/srv/app/data/titles.csv", key: "title_id", format: .csv))
    #expect(u == FileLookupSpec(path: "/etc/users.jsonl", key: "id", format: .jsonl))
    #expect(o.format == .jsonl)
    #expect(spec.lookups.map(\.refresh) == [.every(60_000), .watch, .never])
    #expect(spec.lookups[0].location.description == "p.yaml:7:3")
}

@Test func lookupErrorsHaveExactLocations() {
    #expect(errors(minimal("""
    lookups:
      a: { file: { path: t.csv }, refresh: sometimes }
      b: { file: { key: id, paht: x } }
      c: { refresh: 1s }
      d!: { file: { path: t.csv, key: id } }
      e: { file: { path: t.csv, key: "" }, refresh: 0s }
      f: [1]
    """)) == [
        "p.yaml:7:14: missing 'key' in 'file' in lookup 'a'",
        "p.yaml:7:40: invalid duration 'sometimes' for 'refresh' in lookup 'a' (or watch) (expected e.g. 250ms, 10s, 5m or 1h)",
        "p.yaml:8:14: missing 'path' in 'file' in lookup 'b'",
        "p.yaml:8:25: unknown key 'paht' in 'file' in lookup 'b' (did you mean 'path'?)",
        "p.yaml:9:6: missing 'file' or 'http' in lookup 'c' (e.g. file: { path: data/titles.csv, key: title_id })",
        "p.yaml:10:3: invalid lookup name 'd!' (use letters, digits, '_' and '-')",
        "p.yaml:11:34: 'key' in lookup 'e' must not be empty",
        "p.yaml:11:49: 'refresh' in lookup 'e' (or watch) must be greater than 0, found 0s",
        "p.yaml:12:6: expected a mapping for lookup 'f', found a sequence",
    ])
}

@Test func httpLookupsParseWithDefaults() throws {
    let spec = try load(minimal("""
    lookups:
      geo:
        http:
          url: 'http://127.0.0.1:8080/geo/{ip}'
          rate: 200/s
          concurrency: 8
          timeout: 250ms
          retry: { max: 3, backoff: 10ms..1s }
          cache: { size: 50, ttl: 1m, negative_ttl: 0s }
          on_error: nil
      plain: { http: { url: 'https://geo.example/{k}.json' } }
    """))
    guard case .http(let g) = spec.lookups[0].kind, case .http(let p) = spec.lookups[1].kind else {
        Issue.record("not http lookups"); return
    }
    #expect(g == HTTPLookupSpec(url: "http://127.0.0.1:8080/geo/{ip}", rate: (200, 1000), concurrency: 8, timeoutMs: 250,
                                retries: 3, backoffMinMs: 10, backoffMaxMs: 1000, cacheSize: 50, ttlMs: 60_000,
                                negativeTtlMs: 0, onError: .none))
    #expect(p == HTTPLookupSpec(url: "https://geo.example/{k}.json"))
    #expect(p.concurrency == 32 && p.retries == 2 && p.cacheSize == 10_000 && p.onError == .deadLetter && p.rate == nil)
}

@Test func httpLookupErrorsHaveExactLocations() {
    #expect(errors(minimal("""
    lookups:
      a: { http: { url: 'http://x/geo' } }
      b: { http: { url: 'ftp://x/{k}', rate: fast } }
      c: { http: { url: 'http://x/{k}', retry: { max: -1, backoff: 2s..1s }, on_error: drop, concurency: 2 } }
      d: { http: { url: 'http://x/{k}' }, file: { path: t.csv, key: id }, refresh: 1s }
    """)) == [
        "p.yaml:7:21: 'url' in lookup 'a' needs exactly one placeholder for the key, e.g. 'http://127.0.0.1:8080/geo/{ip}'",
        "p.yaml:8:21: 'url' in lookup 'b' must start with http:// or https://, found 'ftp://x/{k}'",
        "p.yaml:8:42: invalid 'rate' in lookup 'b': expected requests per second or minute, e.g. 200/s or 600/m",
        "p.yaml:9:51: 'max' in 'retry' of lookup 'c' must be at least 0, found -1",
        "p.yaml:9:64: invalid 'backoff' in lookup 'c': expected MIN..MAX, e.g. 50ms..2s",
        "p.yaml:9:84: invalid value 'drop' for 'on_error' in lookup 'c' (expected dead_letter or nil)",
        "p.yaml:9:90: unknown key 'concurency' in 'http' in lookup 'c' (did you mean 'concurrency'?)",
        "p.yaml:10:14: lookup 'd' has both 'file' and 'http'; choose one",
        "p.yaml:10:80: 'refresh' applies to file lookups; an http lookup caches with 'cache: { ttl }'",
    ])
}
