import Testing
@testable import SluiceSpec
import SluiceCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private func seconds(_ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    let elapsed = clock.measure(body)
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

@Test func nodesKeepLineAndColumn() throws {
    let (root, diags) = YAMLReader.read(Array("a:\n  b: [1, 'x']\n  c: |\n    text\n".utf8), file: "f.yaml")
    #expect(diags.isEmpty)
    let top = try #require(root?.mappingPairs)
    #expect(top[0].key.location.description == "f.yaml:1:1")
    let inner = try #require(top[0].value.mappingPairs)
    #expect(inner[0].key.location.description == "f.yaml:2:3")
    let items = try #require(inner[0].value.sequenceItems)
    #expect(items[1].location.description == "f.yaml:2:10")
    guard case .scalar("x", .singleQuoted) = items[1].kind else { Issue.record("style"); return }
    guard case .scalar("text\n", .literal) = inner[1].value.kind else { Issue.record("literal"); return }
}

@Test func deepNestingFailsFastWithALocatedError() {
    let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
    var result: [String] = []
    let t = seconds { result = errors(deep) }
    #expect(result == ["p.yaml:1:65: nesting is deeper than 64 levels"])
    #expect(t < 1.0)
}

@Test func deepBlockNestingFailsToo() {
    var text = ""
    for i in 0..<70 { text += String(repeating: " ", count: i) + "k\(i):\n" }
    text += String(repeating: " ", count: 70) + "v"
    #expect(errors(text) == ["p.yaml:65:65: nesting is deeper than 64 levels"])
}

@Test func nestingOf64LevelsIsAccepted() {
    let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
    let (root, diags) = YAMLReader.read(Array(ok.utf8), file: "f")
    #expect(diags.isEmpty)
    #expect(root != nil)
}

@Test func billionLaughsFailsFast() {
    let bomb = """
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
    """
    var result: [String] = []
    let t = seconds { result = errors(bomb) }
    #expect(result == ["p.yaml:5:8: aliases expand to more than 10000 nodes"])
    #expect(t < 1.0)
}

@Test func specsLargerThanOneMiBAreRefused() {
    let big = "# " + String(repeating: "x", count: 1 << 20) + "\n"
    var result: [String] = []
    let t = seconds { result = errors(big) }
    #expect(result == ["p.yaml: file is too large (1048579 bytes; the limit is 1 MiB)"])
    #expect(t < 1.0)
}

@Test func largeSpecFilesAreRefusedBeforeReading() throws {
    let path = "/tmp/sluice-spec-big-\(getpid()).yaml"
    let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
    #expect(fd >= 0)
    #expect(ftruncate(fd, 3 << 20) == 0)
    close(fd)
    defer { unlink(path) }
    do {
        _ = try SpecLoader.load(path: path, environment: [:])
        Issue.record("expected an error")
    } catch {
        #expect(error.diagnostics.map(\.description) == ["\(path): file is too large (3145728 bytes; the limit is 1 MiB)"])
    }
}

@Test func duplicateKeysAreErrors() {
    #expect(errors("""
    sources: { in: { stdin: {} } }
    sinks:
      out: { from: in, stdout: {} }
      out: { from: in, stderr: {} }
    """) == ["p.yaml:4:3: duplicate key 'out' (first defined at line 3, column 3)"])
}

@Test func libyamlSyntaxErrorsAreLocated() {
    #expect(errors("""
    sources:
      in: { stdin: {} }
     sinks: {}
    """) == ["p.yaml:3:2: did not find expected key (while parsing a block mapping at line 1, column 1)"])
    #expect(errors("a: [1, 2\nb: 3\n") == ["p.yaml:2:2: did not find expected ',' or ']' (while parsing a flow sequence at line 1, column 4)"])
    #expect(errors("a: b: c\n") == ["p.yaml:1:5: mapping values are not allowed in this context"])
}

@Test func invalidUTF8IsLocated() {
    let bytes: [UInt8] = Array("a: 1\nb: ".utf8) + [0xFF, 0x0A]
    let (_, diags) = YAMLReader.read(bytes, file: "f.yaml")
    #expect(diags.map(\.description) == ["f.yaml:2:4: invalid leading UTF-8 octet (#FF)"])
}

@Test func unknownAliasIsAnError() {
    #expect(errors("a: *nope\n") == ["p.yaml:1:4: unknown alias '*nope'"])
}

@Test func onlyOneDocumentIsAllowed() {
    #expect(errors("a: 1\n---\nb: 2\n") == ["p.yaml:2:1: only one YAML document is allowed in a spec"])
}

@Test func nonScalarKeysAreErrors() {
    #expect(errors("? [a]\n: 1\n").first == "p.yaml:1:3: mapping keys must be scalars")
}

@Test func randomBytesNeverCrash() {
    var rng = SeededGenerator(test: "randomBytesNeverCrash", default: 7)
    let alphabet = Array("[]{}:-,&*!|>'\"#%@ \n\tab01?~".utf8)
    for _ in 0..<300 {
        let n = Int.random(in: 0..<400, using: &rng)
        let bytes = (0..<n).map { _ in Bool.random(using: &rng) ? alphabet.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng) }
        do {
            _ = try SpecLoader.load(bytes: bytes, file: "r", directory: "/", environment: [:])
        } catch {
            // A rejection always says where: every problem names the file, a line and a column.
            #expect(!error.diagnostics.isEmpty)
            #expect(error.diagnostics.allSatisfy { $0.description.hasPrefix("r:") }, "\(error)")
        }
    }
}
