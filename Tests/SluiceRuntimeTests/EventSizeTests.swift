import Foundation
import Testing
@testable import SluiceRuntime
import SluiceCore
import SluiceSpec

/// Bounded means bounded in bytes: an event over `max_event_bytes` is dead-lettered `too_large`,
/// and the line reader never holds more than that much of an unfinished line.
@Suite struct EventSizeTests {
    @Test func theDefaultIsOneMebibyte() {
        #expect(EventLimits.defaultMaxEventBytes == 1 << 20)
        #expect(RunOptions().maxEventBytes == 1 << 20)
    }

    @Test func aLongLineIsCutAtTheLimitAndTheNextLineIsIntact() {
        var batcher = LineBatcher(batchSize: 10, maxLineBytes: 1025)
        var events: [Event] = []
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 64 << 10)
        for _ in 0..<48 {   // 3 MiB without a newline
            batcher.feed(chunk) { events += $0 }
            #expect(batcher.partialLineBytes <= 1025)
        }
        batcher.feed(Array("yyy\n{\"n\":2}\n".utf8)) { events += $0 }
        batcher.finish { events += $0 }
        #expect(events.map(\.bytes.count) == [1025, 7])
        #expect(events.map(\.position) == [1, 2])
        #expect(events.last?.text == #"{"n":2}"#)
    }

    @Test func aLongLineInsideOneChunkIsCutToo() {
        var batcher = LineBatcher(batchSize: 10, maxLineBytes: 8)
        var events: [Event] = []
        batcher.feed(Array("0123456789abcdef\nok\n".utf8)) { events += $0 }
        batcher.finish { events += $0 }
        #expect(events.map(\.text) == ["01234567", "ok"])
    }

    @Test func anEventOverTheLimitIsDeadLetteredTooLarge() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-size-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("udfs"), withIntermediateDirectories: true)
        try Data("local M = {}\nfunction M.f(e) e.seen = true return e end\nreturn M\n".utf8).write(to: dir.appendingPathComponent("udfs/m.lua"))
        for yaml in ["""
            sources: { s: { stdin: {} } }
            sinks: { o: { from: s, stdout: {} } }
            """, """
            sources: { s: { stdin: {} } }
            transforms: { t: { from: s, map: { udf: m.f } } }
            sinks: { o: { from: t, stdout: {} } }
            """] {
            let spec = try SpecLoader.load(text: yaml, file: "p.yaml", directory: dir.appendingPathComponent("pipelines").path, environment: [:])
            let big = #"{"pad":""# + String(repeating: "x", count: 200) + #""}"#
            let events = [#"{"n":1}"#, big, #"{"n":3}"#].enumerated().map { Event($1, position: Int64($0 + 1)) }
            var options = RunOptions(sourceOverrides: ["s": events], captureSinks: true, log: { _, _ in })
            options.maxEventBytes = 100
            let report = try Pipeline(spec: spec, options: options).run()
            let written = (report.captured["o"] ?? []).map { String(decoding: $0, as: UTF8.self) }
            #expect(written.count == 2)
            let dead = try (report.captured["dead_letter"] ?? []).map {
                try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])
            }
            #expect(dead.count == 1)
            #expect((dead.first?["reason"] as? String)?.hasPrefix("too_large") == true, "\(dead)")
            #expect(dead.first?["component"] as? String == "s")
            #expect(dead.first?["position"] as? Int == 2)
            #expect(dead.first?["event"] as? String == big)
            #expect(report.counts["s"]?.deadLettered == 1)
        }
    }

    @Test func queueBytesIsASettingWithADefaultAndAClearError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-qb-\(UUID().uuidString)").path
        let base = "sources: { s: { stdin: {} } }\nsinks: { o: { from: s, stdout: {} } }\n"
        #expect(try SpecLoader.load(text: base, file: "p.yaml", directory: dir, environment: [:]).settings.queueBytes == 64 << 20)
        let set = try SpecLoader.load(text: base + "settings: { queue_bytes: 2MiB }\n", file: "p.yaml", directory: dir, environment: [:])
        #expect(set.settings.queueBytes == 2 << 20)
        #expect(throws: (any Error).self) {
            try SpecLoader.load(text: base + "settings: { queue_bytes: lots }\n", file: "p.yaml", directory: dir, environment: [:])
        }
        do {
            _ = try SpecLoader.load(text: base + "settings: { queue_bytes: lots }\n", file: "p.yaml", directory: dir, environment: [:])
        } catch {
            #expect("\(error)".contains("p.yaml:3:26: invalid size 'lots' for 'queue_bytes' in 'settings'"), "\(error)")
        }
    }
}
