import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `udfs.reload: watch` on a directory laid out like a Kubernetes ConfigMap volume, updated the
/// way the kubelet does it: write a new timestamped directory, point a new `..data_tmp` symlink at
/// it, rename that over `..data`, remove the old directory. The `.lua` names never change.
@Suite struct ConfigMapReloadTests {
    /// Makes `udfs/` a ConfigMap volume: `..TS/gen.lua`, `..data -> ..TS`, `gen.lua -> ..data/gen.lua`.
    static func project(_ text: String, into udfs: URL, stamp: String) throws {
        let fm = FileManager.default
        let ts = "..2026_12_01_10_\(stamp)"
        try fm.createDirectory(at: udfs.appendingPathComponent(ts), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: udfs.appendingPathComponent("\(ts)/gen.lua"))
        let data = udfs.appendingPathComponent("..data").path
        let old = try? fm.destinationOfSymbolicLink(atPath: data)
        let tmp = udfs.appendingPathComponent("..data_tmp").path
        #expect(symlink(ts, tmp) == 0)
        #expect(rename(tmp, data) == 0)   // the atomic swap
        if let old { try fm.removeItem(at: udfs.appendingPathComponent(old)) }
        let visible = udfs.appendingPathComponent("gen.lua").path
        if (try? fm.destinationOfSymbolicLink(atPath: visible)) == nil { #expect(symlink("..data/gen.lua", visible) == 0) }
    }

    @Test func aConfigMapSwapOfDotDataIsExactlyOneReloadWithNothingLost() async throws {
        let dir = try SluiceBinary.scratch()
        let udfs = dir.appendingPathComponent("udfs")
        try Self.project(UDFFile.stamp("v1"), into: udfs, stamp: "00_00.000000001")
        try dir.write("""
        pipeline: configmap
        udfs: { reload: watch }
        sources: { s: { stdin: {} } }
        transforms: { t: { from: s, map: { udf: gen.stamp } } }
        sinks: { o: { from: t, file: { path: ../out/o.jsonl } } }
        """, to: "pipelines/p.yaml")
        let run = try ReloadingRun(dir: dir)
        try await offPool { run.feed(.seqLines(0..<1000)) }
        #expect(await eventually(timeout: .seconds(20)) { dir.lines("out/o.jsonl").count == 1000 })

        try Self.project(UDFFile.stamp("v2"), into: udfs, stamp: "05_00.000000002")
        #expect(try await offPool { run.waitForVersion(2) }, "\(run.stderrLines)")
        try await offPool { run.feed(.seqLines(1000..<2000)) }
        let result = try await offPool { run.finish() }
        #expect(result.status == 0, "\(result.stderr)")

        let live = result.stderr.split(separator: "\n").filter { $0.contains("is live") }
        #expect(live == ["sluice: info: UDF version 2 is live"], "\(result.stderr)")
        #expect(result.stderr.contains("; udf version 2, 0 reload(s) rejected"), "\(result.stderr)")
        let out = Stamped.parse(dir.lines("out/o.jsonl"))
        #expect(out.map(\.seq) == Array(0..<2000), "every event once, in order")
        #expect(out[..<1000].allSatisfy { $0.marker == "v1" && $0.version == 1 })
        #expect(out[1000...].allSatisfy { $0.marker == "v2" && $0.version == 2 })
    }
}

/// `deploy/kubernetes/`: the pipeline it ships is valid, the grace periods fit, the probes and
/// scrape annotations point at the admin endpoint, and the UDF ConfigMap is mounted as a directory.
@Suite struct KubernetesManifestTests {
    static let deploy = SluiceBinary.root.appendingPathComponent("deploy/kubernetes")

    @Test func theManifestsAgreeWithThePipelineTheyRun() async throws {
        let validate = try await SluiceBinary.runAsync(["validate", Self.deploy.appendingPathComponent("pipeline.yaml").path],
                                                       environment: ["SLUICE_UDFS": "udfs"])
        #expect(validate.status == 0, "\(validate.stderr)")
        let pipeline = try String(contentsOf: Self.deploy.appendingPathComponent("pipeline.yaml"), encoding: .utf8)
        let deployment = try String(contentsOf: Self.deploy.appendingPathComponent("deployment.yaml"), encoding: .utf8)
        let kustomization = try String(contentsOf: Self.deploy.appendingPathComponent("kustomization.yaml"), encoding: .utf8)
        let grace = try #require(pipeline.firstMatch(of: /grace: (\d+)s/).flatMap { Int($0.1) })
        let termination = try #require(deployment.firstMatch(of: /terminationGracePeriodSeconds: (\d+)/).flatMap { Int($0.1) })
        #expect(termination > grace)
        #expect(pipeline.contains("reload: watch"))
        #expect(pipeline.contains("listen: '0.0.0.0:${SLUICE_ADMIN_PORT:-9464}'"))
        #expect(deployment.contains("httpGet: { path: /health, port: admin }"))
        #expect(deployment.contains("httpGet: { path: /ready, port: admin }"))
        #expect(deployment.contains(#"prometheus.io/scrape: "true""#) && deployment.contains(#"prometheus.io/port: "9464""#)
                && deployment.contains("prometheus.io/path: /metrics"))
        #expect(deployment.contains("{ name: udfs, mountPath: /udfs, readOnly: true }"))
        #expect(!deployment.contains("subPath:"), "a subPath mount never sees ConfigMap updates")
        #expect(deployment.contains("readOnlyRootFilesystem: true") && deployment.contains("runAsNonRoot: true"))
        // Every file the ConfigMaps are generated from exists, and names are stable (updated in place).
        #expect(kustomization.contains("disableNameSuffixHash: true"))
        for m in kustomization.matches(of: /- ((?:udfs\/)?[a-z_]+\.(?:yaml|lua))\n/) where String(m.1) != "deployment.yaml" {
            #expect(FileManager.default.fileExists(atPath: Self.deploy.appendingPathComponent(String(m.1)).path), "\(m.1)")
        }
    }
}
