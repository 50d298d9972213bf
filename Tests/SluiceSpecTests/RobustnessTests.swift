import Testing
@testable import SluiceSpec
import SluiceCore

private func seconds(_ body: () -> Void) -> Double {
    let elapsed = ContinuousClock().measure(body)
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

@Test func aLargeValidSpecLoadsQuickly() throws {
    // ~1 MiB: a chain of 8,000 transforms, all fed into one sink.
    var text = "sources:\n  s: { stdin: {} }\ntransforms:\n"
    let n = 8_000
    for i in 0..<n {
        text += "  t\(i): { from: \(i == 0 ? "s" : "t\(i - 1)"), filter: { match: { field_\(i): { gt: \(i) }, a.b: [x] } } }\n"
            .replacingOccurrences(of: ", a.b: [x]", with: "")
    }
    text += "sinks:\n  out:\n    from: [" + (0..<n).map { "t\($0)" }.joined(separator: ", ") + "]\n    stdout: {}\n"
    #expect(text.utf8.count < YAMLReader.maxBytes)
    var spec: PipelineSpec?
    let t = seconds { spec = try? load(text) }
    #expect(spec?.transforms.count == n)
    #expect(spec?.topologicalOrder().count == n + 2)
    print("large spec: \(text.utf8.count) bytes loaded in \(t) s")   // speed is for bench/, not a unit test
}

@Test func mutatedSpecsNeverCrashAndFailFast() {
    var rng = SeededGenerator(test: "mutatedSpecsNeverCrashAndFailFast", default: 20261201)
    let base = Array(routerSpec.utf8)
    let pieces = Array("[]{}:,-&*<>!|'\"#$%~ \n\t\u{0}xyz0123.".utf8)
    var slowest = 0.0
    for _ in 0..<500 {
        var bytes = base
        for _ in 0..<Int.random(in: 1...8, using: &rng) where !bytes.isEmpty {
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: bytes.remove(at: i)
            case 1: bytes.insert(pieces.randomElement(using: &rng)!, at: i)
            case 2: bytes[i] = pieces.randomElement(using: &rng)!
            default:
                let j = min(bytes.count, i + Int.random(in: 1...40, using: &rng))
                bytes.insert(contentsOf: bytes[i..<j], at: i)
            }
        }
        var outcome: Result<PipelineSpec, SpecErrors>?
        let t = seconds { outcome = Result { () throws(SpecErrors) in try SpecLoader.load(bytes: bytes, file: "m", directory: "/", environment: [:]) } }
        slowest = max(slowest, t)
        // Either it loads, or every problem is reported with a location in the file.
        if case .failure(let e) = outcome {
            #expect(!e.diagnostics.isEmpty)
            #expect(e.diagnostics.allSatisfy { $0.description.hasPrefix("m:") }, "\(e)")
        }
    }
    // RELIABILITY.md test 9: each input within 1 s (a generous bound: pathological inputs took minutes before the depth cap).
    #expect(slowest < 1.0)
}
