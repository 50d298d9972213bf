import Foundation
import Testing

/// pipelines/enrich-plays.yaml through the built binary (its geo lookup against
/// scripts/geo_service.py), against a reference this test computes from data/plays.sample.jsonl and
/// data/titles.sample.csv on its own.
@Suite struct EnrichPlaysExampleTests {
    @Test func enrichPlaysMatchesAnIndependentReference() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-enrich-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for sub in ["pipelines", "udfs", "data"] {
            try FileManager.default.copyItem(at: SluiceBinary.root.appendingPathComponent(sub), to: dir.appendingPathComponent(sub))
        }
        let geo = try await GeoService.start(latencyMs: 2)
        let r = try await SluiceBinary.runAsync(["run", "pipelines/enrich-plays.yaml"], cwd: dir, environment: ["GEO_URL": geo.url])
        #expect(r.status == 0, "\(r.stderr)")

        // Reference: the generated titles have no quoted fields, so a plain split reads them.
        var titles: [String: [String]] = [:]
        for line in dir.lines("data/titles.sample.csv").dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            titles[f[0]] = f
        }
        var expected: [NSDictionary] = []
        for line in dir.lines("data/plays.sample.jsonl") {
            let e = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard e["event_type"] as? String == "play" else { continue }
            let country = e["country"] as! String
            var out: [String: Any] = ["event_id": e["event_id"]!, "profile_id": e["profile_id"]!, "title_id": e["title_id"]!, "ts": e["ts"]!,
                                      "country": country, "region": Self.regions[country]!.0, "currency": Self.regions[country]!.1]
            if let t = titles["\(e["title_id"]!)"] {
                out["title"] = t[1]; out["genre"] = t[2]; out["year"] = Int(t[3])!
            } else {
                out["title"] = "unknown"
            }
            expected.append(out as NSDictionary)
        }
        let actual = try dir.lines("out/enrich-plays/plays.jsonl").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? NSDictionary)
        }
        #expect(expected.count > 100)
        #expect(expected.contains { ($0["title"] as? String) == "unknown" } && expected.contains { ($0["title"] as? String) != "unknown" })
        #expect(actual == expected)
        #expect(dir.lines("out/enrich-plays/dead_letter.jsonl").isEmpty)
        // One request per country: the cache and coalescing answer every other play.
        let stats = try geo.stats()
        #expect(stats.keys.count == Self.regions.count && stats.keys.values.allSatisfy { $0 == 1 }, "\(stats.keys)")
    }

    static let regions: [String: (String, String)] = [
        "US": ("NA", "USD"), "CA": ("NA", "CAD"), "MX": ("LATAM", "MXN"), "BR": ("LATAM", "BRL"),
        "GB": ("EMEA", "GBP"), "DE": ("EMEA", "EUR"), "FR": ("EMEA", "EUR"),
        "IN": ("APAC", "INR"), "JP": ("APAC", "JPY"), "KR": ("APAC", "KRW"),
    ]
}
