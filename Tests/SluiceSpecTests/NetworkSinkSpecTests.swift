import Testing
@testable import SluiceSpec

@Test func httpAndMemcachedSinksLoadWithTheirDefaultsAndRetry() throws {
    let spec = try load("""
    sources: { in: { stdin: {} } }
    sinks:
      hook:
        from: in
        http: { url: 'http://127.0.0.1:8080/ingest', batch: 50, linger: 5ms, format: json_array, headers: { X-Token: abc }, timeout: 2s }
        retry: { max: 3, backoff: 200ms..4s }
      cache: { from: in, memcached: { servers: [127.0.0.1:11211, 'cache-2:11311'], key: 'title:{title_id}', ttl: 1h, connections: 4 } }
      plain: { from: in, file: { path: out.jsonl } }
    """)
    guard case .http(let h) = spec.sinks[0].kind else { Issue.record("not http"); return }
    #expect(h == HTTPSinkSpec(url: "http://127.0.0.1:8080/ingest", batch: 50, linger: 5, format: .jsonArray,
                              headers: [("X-Token", "abc")], timeout: 2000))
    #expect(spec.sinks[0].effectiveRetry == RetrySpec(max: 3, minBackoff: 200, maxBackoff: 4000))
    guard case .memcached(let m) = spec.sinks[1].kind else { Issue.record("not memcached"); return }
    #expect(m == MemcachedSinkSpec(servers: ["127.0.0.1:11211", "cache-2:11311"], key: "title:{title_id}", ttl: 3600, timeout: 1000, connections: 4))
    #expect(spec.sinks[1].retry == nil && spec.sinks[1].effectiveRetry == .network)
    #expect(spec.sinks[2].effectiveRetry == .none)
}

@Test func retryOnAFileSinkKeepsTheDefaultsItDoesNotName() throws {
    let spec = try load(minimal().replacingOccurrences(of: "stdout: {} }", with: "stdout: {}, retry: { max: 4 } }"))
    #expect(spec.sinks[0].retry == RetrySpec(max: 4, minBackoff: 100, maxBackoff: 10_000))
    let one = try load(minimal().replacingOccurrences(of: "stdout: {} }", with: "stdout: {}, retry: { backoff: 1s } }"))
    #expect(one.sinks[0].retry == RetrySpec(max: 0, minBackoff: 1000, maxBackoff: 1000))
}

@Test func badRetryHTTPAndMemcachedValuesAreLocated() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks:
      a: { from: in, stdout: {}, retry: { max: -1, backoff: 10s..1s, tries: 3 } }
      b: { from: in, stdout: {}, retry: { backoff: soon } }
      h: { from: in, http: { url: 'ftp://x', batch: 0 } }
      i: { from: in, http: { batch: 5, format: xml, headers: { 'Bad Name': v } } }
      m: { from: in, memcached: { servers: [localhost, 'h:99999'], key: '{a', ttl: 31d } }
      n: { from: in, memcached: { key: 'x' } }
    """) == [
        "p.yaml:3:44: 'max' in 'retry' of sink 'a' must be at least 0, found -1",
        "p.yaml:3:66: unknown key 'tries' in 'retry' of sink 'a'",
        "p.yaml:4:48: invalid 'backoff' 'soon' in 'retry' of sink 'b' (expected MIN..MAX, e.g. 100ms..10s)",
        "p.yaml:5:31: 'url' in 'http' of sink 'h' must start with http:// or https://, found 'ftp://x'",
        "p.yaml:6:24: missing 'url' in 'http' of sink 'i'",
        "p.yaml:7:41: invalid server 'localhost' in 'memcached' of sink 'm' (expected HOST:PORT, e.g. 127.0.0.1:11211)",
        "p.yaml:7:52: invalid server 'h:99999' in 'memcached' of sink 'm' (expected HOST:PORT, e.g. 127.0.0.1:11211)",
        "p.yaml:7:69: invalid key template '{a' for 'key' in 'memcached' of sink 'm': unclosed '{' at character 1",
        "p.yaml:7:80: 'ttl' in 'memcached' of sink 'm' must be whole seconds up to 30d (memcached reads longer ones as a date), found 31d",
        "p.yaml:8:29: missing 'servers' in 'memcached' of sink 'n'",
        "p.yaml:8:36: key template 'x' for 'key' in 'memcached' of sink 'n' names no field (e.g. '{profile_id}')",
    ])
}

@Test func memcachedConnectionsAreBetweenOneAndSixtyFour() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks:
      a: { from: in, memcached: { servers: [h:1], key: '{k}', connections: 0 } }
      b: { from: in, memcached: { servers: [h:1], key: '{k}', connections: 65 } }
    """) == [
        "p.yaml:3:72: 'connections' in 'memcached' of sink 'a' must be at least 1, found 0",
        "p.yaml:4:72: 'connections' in 'memcached' of sink 'b' must be at most 64",
    ])
}
