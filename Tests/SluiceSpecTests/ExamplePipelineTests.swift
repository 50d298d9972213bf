import Testing
@testable import SluiceSpec

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `pipelines/` at the package root, found from this file's path.
private func pipelinesDirectory(_ file: String = #filePath) -> String {
    var parts = file.split(separator: "/").map(String.init)
    parts.removeLast(3)  // Tests/SluiceSpecTests/ExamplePipelineTests.swift
    return "/" + parts.joined(separator: "/") + "/pipelines"
}

private func yamlFiles(in dir: String) -> [String] {
    guard let d = opendir(dir) else { return [] }
    defer { closedir(d) }
    var out: [String] = []
    while let entry = readdir(d) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        if name.hasSuffix(".yaml") || name.hasSuffix(".yml") { out.append(dir + "/" + name) }
    }
    return out.sorted()
}

@Test func everyExamplePipelineLoads() throws {
    let files = yamlFiles(in: pipelinesDirectory())
    #expect(!files.isEmpty, "no examples found in \(pipelinesDirectory())")
    for path in files {
        do {
            let spec = try SpecLoader.load(path: path, environment: [:])
            #expect(!spec.sources.isEmpty, "\(path)")
            #expect(spec.topologicalOrder().count == spec.sources.count + spec.transforms.count + spec.sinks.count)
        } catch {
            Issue.record("\(error.description)")
        }
    }
}
