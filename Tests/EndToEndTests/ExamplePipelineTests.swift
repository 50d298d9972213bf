import Foundation
import Testing

/// Every shipped example runs through the built binary and its output is compared exactly.
@Suite struct ExamplePipelineTests {
    /// Copies pipelines/, udfs/ and data/ into a scratch dir so runs never touch the repo's out/.
    func exampleTree() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-examples-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for sub in ["pipelines", "udfs", "data"] {
            try FileManager.default.copyItem(at: SluiceBinary.root.appendingPathComponent(sub), to: dir.appendingPathComponent(sub))
        }
        return dir
    }

    func golden(_ name: String) throws -> [String] {
        let url = SluiceBinary.root.appendingPathComponent("Tests/EndToEndTests/golden/\(name)")
        return String(decoding: try Data(contentsOf: url), as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test func quickstartWritesExactlyTheGoldenOutputs() async throws {
        let dir = try exampleTree()
        let r = try await SluiceBinary.runAsync(["run", "pipelines/quickstart.yaml"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(dir.lines("out/quickstart/us_plays.jsonl") == (try golden("quickstart/us_plays.jsonl")))
        #expect(dir.lines("out/quickstart/mobile_plays.jsonl") == (try golden("quickstart/mobile_plays.jsonl")))
        #expect(r.stdoutLines == (try golden("quickstart/stdout.jsonl")))
        #expect(dir.lines("out/quickstart/dead_letter.jsonl").isEmpty)
        #expect(r.stderr.contains("read 3000 events"), "\(r.stderr)")
    }

    /// The golden files are what an independent computation of the quickstart gives
    /// (scripts/quickstart_reference.py, from the input alone).
    @Test func quickstartGoldenFilesEqualTheIndependentReference() async throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-qref-\(UUID().uuidString)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "scripts/quickstart_reference.py", "data/plays.sample.jsonl", out.path]
        p.currentDirectoryURL = SluiceBinary.root
        try p.run()
        let status = try await offPool { waitForExit(p) }
        #expect(status == 0)
        for name in ["us_plays", "mobile_plays", "stdout"] {
            let reference = String(decoding: try Data(contentsOf: out.appendingPathComponent("\(name).jsonl")), as: UTF8.self)
                .split(separator: "\n").map(String.init)
            #expect(!reference.isEmpty)
            #expect(reference == (try golden("quickstart/\(name).jsonl")), "\(name)")
        }
    }

    @Test func everyExamplePipelineValidates() async throws {
        let dir = try exampleTree()
        let specs = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("pipelines").path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(!specs.isEmpty)
        for spec in specs {
            let r = try await SluiceBinary.runAsync(["validate", "pipelines/\(spec)"], cwd: dir)
            #expect(r.status == 0, "\(spec): \(r.stderr)")
        }
    }

    @Test func everyExamplePipelinesTestsBlockPasses() async throws {
        let dir = try exampleTree()
        let geo = try await GeoService.start()   // enrich-plays' http lookup
        let specs = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("pipelines").path)
            .filter { $0.hasSuffix(".yaml") }.sorted()
        for spec in specs {
            let r = try await SluiceBinary.runAsync(["test", "pipelines/\(spec)"], cwd: dir, environment: ["GEO_URL": geo.url])
            #expect(r.status == 0, "\(spec): \(r.stdout) \(r.stderr)")
            #expect(!r.stdout.contains("FAIL"), "\(spec): \(r.stdout)")
            #expect(r.stdout.contains("passed, 0 failed") && !r.stdout.contains(" 0 passed"), "\(spec) has a non-empty tests: block: \(r.stdout)")
        }
    }

    @Test func quickstartGraphIsMermaid() async throws {
        let dir = try exampleTree()
        let r = try await SluiceBinary.runAsync(["graph", "pipelines/quickstart.yaml"], cwd: dir)
        #expect(r.status == 0)
        #expect(r.stdoutLines.first == "flowchart LR")
        #expect(r.stdout.contains("n_plays --> n_long_plays"))
        #expect(r.stdout.contains("n_enriched -->|when| n_us_plays"))
    }
}
