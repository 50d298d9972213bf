import Testing
@testable import SluiceSpec
import SluiceCore

@Test func plainScalarsAreTypedLikeYAML() {
    let cases: [(String, JSONValue)] = [
        ("7", .int(7)), ("-3", .int(-3)), ("+4", .int(4)), ("1_000", .int(1000)), ("0x1F", .int(31)), ("0o17", .int(15)),
        ("010", .int(10)),
        ("1.5", .double(1.5)), ("-0.25", .double(-0.25)), ("1e3", .double(1000)), (".5", .double(0.5)), ("2.", .double(2)),
        ("true", .bool(true)), ("False", .bool(false)), ("TRUE", .bool(true)),
        ("null", .null), ("~", .null), ("", .null), ("NULL", .null),
        ("yes", .string("yes")), ("no", .string("no")), ("on", .string("on")), ("NO", .string("NO")),
        ("1.2.3", .string("1.2.3")), ("12:30", .string("12:30")), ("0x", .string("0x")), ("1_", .string("1_")),
        ("e5", .string("e5")), ("-", .string("-")), ("nan", .string("nan")),
        ("99999999999999999999", .double(1e20)),
    ]
    for (text, expected) in cases {
        #expect(YAMLScalars.resolvePlain(text) == expected, "\(text)")
    }
    #expect(YAMLScalars.resolvePlain(".inf") == .double(.infinity))
    guard case .double(let nan) = YAMLScalars.resolvePlain(".nan"), nan.isNaN else { Issue.record(".nan"); return }
}

@Test func quotedAndTaggedScalarsInEvents() throws {
    let spec = try load(minimal("""
    tests:
      - name: t
        input:
          in:
            - { a: '7', b: "true", c: !!str 8, d: !!float 2, e: !!int "9", g: [1, x, null] }
            - f: |
                block
        expect: {}
    """))
    #expect(spec.tests[0].input[0].1[0] == .object([
        ("a", .string("7")), ("b", .string("true")), ("c", .string("8")), ("d", .double(2)), ("e", .int(9)),
        ("g", .array([.int(1), .string("x"), .null])),
    ]))
    #expect(spec.tests[0].input[0].1[1] == .object([("f", .string("block\n"))]))
}

@Test func unsupportedOrWrongTagsAreErrors() {
    #expect(errors(minimal("""
    tests:
      - name: t
        input: { in: [ { a: !!int x, b: !custom 1 } ] }
        expect: {}
    """)) == [
        "p.yaml:8:25: 'x' is not a valid !!int",
        "p.yaml:8:37: unsupported tag '!custom'",
    ])
}

@Test func sizesRatesAndDurations() {
    #expect(YAMLScalars.parseSize("64MiB") == 64 << 20)
    #expect(YAMLScalars.parseSize("512KiB") == 512 << 10)
    #expect(YAMLScalars.parseSize("1GiB") == 1 << 30)
    #expect(YAMLScalars.parseSize("10MB") == 10_000_000)
    #expect(YAMLScalars.parseSize("1.5KiB") == 1536)
    #expect(YAMLScalars.parseSize("4096") == 4096)
    #expect(YAMLScalars.parseSize("100b") == 100)
    #expect(YAMLScalars.parseSize("64XB") == nil)
    #expect(YAMLScalars.parseSize("MiB") == nil)
    #expect(YAMLScalars.parseSize("-1MiB") == nil)
    #expect(YAMLScalars.parseSize("0.3B") == nil)

    #expect(YAMLScalars.parseRate("100/s") == 100)
    #expect(YAMLScalars.parseRate("600/m") == 10)
    #expect(YAMLScalars.parseRate("60/min") == 1)
    #expect(YAMLScalars.parseRate("7200/h") == 2)
    #expect(YAMLScalars.parseRate("2.5") == 2.5)
    #expect(YAMLScalars.parseRate("0/s") == nil)
    #expect(YAMLScalars.parseRate("100/week") == nil)
    #expect(YAMLScalars.parseRate("fast") == nil)

    #expect(YAMLScalars.parseDurationMillis("250ms") == 250)
    #expect(YAMLScalars.parseDurationMillis("10s") == 10_000)
    #expect(YAMLScalars.parseDurationMillis("5m") == 300_000)
    #expect(YAMLScalars.parseDurationMillis("1h") == 3_600_000)
    #expect(YAMLScalars.parseDurationMillis("1.5s") == 1500)
    #expect(YAMLScalars.parseDurationMillis("10") == nil)
    #expect(YAMLScalars.parseDurationMillis("s") == nil)
}

@Test func suggestionsUseEditDistance() {
    #expect(Suggest.closest(to: "fliter", among: ["filter", "map"]) == "filter")
    #expect(Suggest.closest(to: "sorces", among: ["sources", "sinks"]) == "sources")
    #expect(Suggest.closest(to: "xyz", among: ["filter", "map"]) == nil)
    #expect(Suggest.closest(to: String(repeating: "a", count: 5000), among: ["a"]) == nil)
}
