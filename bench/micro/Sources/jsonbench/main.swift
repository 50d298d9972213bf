// Not a test: a release-build timing loop for the declarative W1 path.
//   W1: keep event_type == "play" and duration_ms > 1000; project
//   {profile_id, title_id, ts, country, os: client.os}; write JSON lines.
import SluiceCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func cpuNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

@inline(never)
func measure(_ name: String, _ lines: [[UInt8]], _ passes: Int, _ body: () -> Int) -> Double {
    if let only = getenv("ONLY"), !name.hasPrefix(String(cString: only)) { return 0 }
    var best = Double.infinity
    var sink = 0
    for _ in 0..<3 {
        let t0 = cpuNanos()
        for _ in 0..<passes { sink &+= body() }
        let t1 = cpuNanos()
        best = min(best, Double(t1 - t0) / Double(passes * lines.count))
    }
    let perSec = 1e9 / best
    print("\(name.padding(toLength: 34, withPad: " ", startingAt: 0)) \(String(format: "%7.1f", best)) ns/event  \(String(format: "%6.2f", perSec / 1e6))M events/s/core  (check \(sink % 1000))")
    return best
}

func main() {
    let args = CommandLine.arguments
    guard args.count >= 2, let file = fopen(args[1], "rb") else {
        print("usage: jsonbench FILE.jsonl [passes]")
        exit(2)
    }
    let passes = args.count >= 3 ? Int(args[2]) ?? 20 : 20

    var lines: [[UInt8]] = []
    var lineBuf: UnsafeMutablePointer<CChar>? = nil
    var cap = 0
    while true {
        let n = getline(&lineBuf, &cap, file)
        if n <= 0 { break }
        var len = n
        if let lineBuf, lineBuf[len - 1] == 0x0A { len -= 1 }
        lines.append(lineBuf!.withMemoryRebound(to: UInt8.self, capacity: len) { Array(UnsafeBufferPointer(start: $0, count: len)) })
    }
    fclose(file)
    let totalBytes = lines.reduce(0) { $0 + $1.count }
    print("events: \(lines.count), mean line \(totalBytes / max(lines.count, 1)) bytes, passes: \(passes)")

    let match = CompiledMatch(MatchSpec(clauses: [
        MatchClause(path: ["event_type"], op: .eq(.string("play"))),
        MatchClause(path: ["duration_ms"], op: .gt(.int(1000))),
    ]))
    let project = CompiledProjection([
        ProjectField(output: "profile_id", path: ["profile_id"]),
        ProjectField(output: "title_id", path: ["title_id"]),
        ProjectField(output: "ts", path: ["ts"]),
        ProjectField(output: "country", path: ["country"]),
        ProjectField(output: "os", path: ["client", "os"]),
    ])

    _ = measure("validate (object, strict)", lines, passes) {
        var ok = 0
        for l in lines { if l.withUnsafeBytes({ JSONValidator.isValidObject($0) }) { ok += 1 } }
        return ok
    }
    _ = measure("match (event_type, duration_ms)", lines, passes) {
        var kept = 0
        for l in lines { if l.withUnsafeBytes({ match.matches($0) }) { kept += 1 } }
        return kept
    }
    _ = measure("project (5 fields, all events)", lines, passes) {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        var written = 0
        for l in lines {
            l.withUnsafeBytes { project.apply($0, into: &out) }
            out.append(0x0A)
            if out.count > (1 << 20) - 512 { written += out.count; out.removeAll(keepingCapacity: true) }
        }
        return written + out.count
    }
    var kept = 0
    _ = measure("W1 total: validate+match+project", lines, passes) {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        var written = 0
        kept = 0
        for l in lines {
            l.withUnsafeBytes { raw in
                guard JSONValidator.isValidObject(raw) else { return }
                guard match.matches(raw) else { return }
                kept += 1
                project.apply(raw, into: &out)
                out.append(0x0A)
            }
            if out.count > (1 << 20) - 512 { written += out.count; out.removeAll(keepingCapacity: true) }
        }
        return written + out.count
    }
    print("kept \(kept) of \(lines.count) events")
    let chain = DeclarativeChain([
        .match(MatchSpec(clauses: [
            MatchClause(path: ["event_type"], op: .eq(.string("play"))),
            MatchClause(path: ["duration_ms"], op: .gt(.int(1000))),
        ])),
        .project([
            ProjectField(output: "profile_id", path: ["profile_id"]),
            ProjectField(output: "title_id", path: ["title_id"]),
            ProjectField(output: "ts", path: ["ts"]),
            ProjectField(output: "country", path: ["country"]),
            ProjectField(output: "os", path: ["client", "os"]),
        ]),
    ])
    var keptFused = 0
    _ = measure("W1 fused: DeclarativeChain.run", lines, passes) {
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        var written = 0
        keptFused = 0
        for l in lines {
            l.withUnsafeBytes { raw in
                if case .kept = chain.run(raw, into: &out) {
                    keptFused += 1
                    out.append(0x0A)
                }
            }
            if out.count > (1 << 20) - 512 { written += out.count; out.removeAll(keepingCapacity: true) }
        }
        return written + out.count
    }
    print("fused kept \(keptFused) of \(lines.count) events")
}
main()
