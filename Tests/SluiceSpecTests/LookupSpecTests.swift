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
        "p.yaml:9:6: missing 'file' in lookup 'c' (e.g. file: { path: data/titles.csv, key: title_id })",
        "p.yaml:10:3: invalid lookup name 'd!' (use letters, digits, '_' and '-')",
        "p.yaml:11:34: 'key' in lookup 'e' must not be empty",
        "p.yaml:11:49: 'refresh' in lookup 'e' (or watch) must be greater than 0, found 0s",
        "p.yaml:12:6: expected a mapping for lookup 'f', found a sequence",
    ])
}
