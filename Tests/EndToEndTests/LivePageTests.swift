import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The live page at `GET /`, loaded in headless Chromium (Debian's `chromium`, installed by
/// `scripts/install-deps.sh --test`, which `make test` runs) while events flow: after its script ran, the DOM names every
/// component, shows a non-zero rate, and marks the sink whose queue is full as behind.
@Suite struct LivePageTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=...`); its stdout.
    static func chromium(_ url: String, _ args: [String], home: URL) throws -> String {
        let p = Process()
        let out = Pipe()
        p.executableURL = URL(fileURLWithPath: chromium ?? "/usr/bin/chromium")
        // --virtual-time-budget lets the page's timers and fetches run before the DOM is dumped.
        p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                       "--user-data-dir=\(home.path)", "--virtual-time-budget=4000", "--window-size=1400,900"] + args + [url]
        var env = ProcessInfo.processInfo.environment
        env["HOME"] = home.path
        p.environment = env
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        _ = waitForExit(p, timeout: 120)
        return String(decoding: data, as: UTF8.self)
    }

    @Test(.enabled(if: chromium != nil, "needs Debian's chromium (scripts/install-deps.sh --test installs it)"))
    func thePageDrawsEveryComponentWithLiveRatesAndMarksTheSinkThatIsBehind() async throws {
        let dir = try SluiceBinary.scratch()
        #expect(mkfifo(dir.appendingPathComponent("out/pipe").path, 0o644) == 0)
        // `stalled` writes to a FIFO nobody reads: its queue fills up (and drops the rest), the others flow.
        try OpsPipeline.write(into: dir, extraSinks: "  stalled: { from: tagged, file: { path: ../out/pipe }, queue: { capacity: 10, when_full: drop_newest } }")
        let (run, port) = try await OpsPipeline.start(dir)
        defer { run.send(SIGKILL) }
        #expect(await eventually(timeout: .seconds(20)) { dir.lines("out/all.jsonl").count > 1500 })
        let home = dir.appendingPathComponent("chromium")
        let url = "http://127.0.0.1:\(port)/"
        let dom = try await offPool { try Self.chromium(url, ["--dump-dom"], home: home) }

        // Every component is drawn as a node, by name.
        let components = OpsPipeline.components + ["stalled"]
        for c in components {
            #expect(dom.contains(try Regex("<div class=\"node [a-z_ ]*\" data-name=\"\(c)\"[ >]")), "\(c) missing")
        }
        // The nodes carry live rates: the source's is not zero.
        #expect(dom.components(separatedBy: "<div class=\"node ").count - 1 == components.count, "\(dom)")
        let rates = dom.matches(of: /data-name="plays" style=[^>]*>.*?data-rate="in">([0-9.,k]+)</).map { String($0.1) }
        #expect(rates.count == 1, "\(dom)")
        #expect((Double(rates.first?.replacingOccurrences(of: ",", with: "") ?? "0") ?? 0) > 0, "\(rates)")
        // The full sink is coloured as behind; the flowing one is not.
        #expect(dom.contains(#"<div class="node sink hot" data-name="stalled" style="#), "\(dom)")
        #expect(dom.contains(#"<div class="node sink " data-name="all" style="#), "\(dom)")
        // Header: pipeline, phase, UDF version.
        #expect(dom.contains("Sluice · ops"))
        #expect(dom.contains(#"<b id="udfVersion">1</b>"#), "\(dom)")
        #expect(dom.contains(#"<b id="phase">running</b>"#))
        // The table lists every component too.
        for c in components { #expect(dom.contains("<tr class=\"") && dom.contains("data-name=\"\(c)\"><td>\(c)</td>")) }

        // And it renders: a screenshot is a real PNG of the window's size.
        let shot = dir.appendingPathComponent("page.png")
        _ = try await offPool { try Self.chromium(url, ["--screenshot=\(shot.path)"], home: home) }
        let png = try Data(contentsOf: shot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        #expect(png.count > 20_000)
    }
}
