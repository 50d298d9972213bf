import Foundation
import Synchronization
import Testing
@testable import SluiceRuntime

/// The sampling slots behind `GET /tap` and the rates behind `GET /topology`, without I/O.
/// Serialized: the "a tap waits" counter is process-wide.
@Suite(.serialized) struct TapAndRateTests {
    /// Counts how often the event path was asked for bytes.
    final class Calls: Sendable {
        let n = Atomic<Int>(0)
        func bytes(_ b: String) -> [UInt8]? { n.add(1, ordering: .relaxed); return Array(b.utf8) }
    }

    @Test func withoutAWaitingReaderTheEventPathCopiesNothing() {
        let taps = TapPoints(names: ["a", "b"])
        let calls = Calls()
        #expect(!TapPoints.anyWaiting)
        for _ in 0..<1000 { taps.offer(0) { calls.bytes("x") } }
        #expect(calls.n.load(ordering: .relaxed) == 0)
        #expect(taps.slot(named: "b") == 1 && taps.slot(named: "c") == nil)
    }

    @Test func aWaitingReaderGetsOneEventAndTheRestAreDropped() async throws {
        let taps = TapPoints(names: ["a", "b"])
        #expect(taps.open(1))
        #expect(!taps.open(1), "one reader per component")
        let got = Mutex<[String]>([])
        let reader = Thread {
            if let e = taps.next(1, cancelled: { false }) { got.withLock { $0.append(String(decoding: e, as: UTF8.self)) } }
        }
        reader.start()
        #expect(await eventually { taps.isWaiting(1) })
        #expect(TapPoints.anyWaiting && !taps.isWaiting(0))
        let calls = Calls()
        taps.offer(0) { calls.bytes("other component") }
        for i in 0..<100 { taps.offer(1) { calls.bytes("event \(i)") } }
        #expect(await eventually { !got.withLock { $0.isEmpty } })
        #expect(got.withLock { $0 } == ["event 0"])
        #expect(calls.n.load(ordering: .relaxed) == 1, "only the first offer was copied")
        #expect(!TapPoints.anyWaiting)
        // A reader that gives up disarms its slot.
        #expect(taps.next(1, cancelled: { true }) == nil)
        #expect(!TapPoints.anyWaiting && !taps.isWaiting(1))
        taps.close(1)
        #expect(taps.open(1))
    }

    @Test func aTapLineIsTheObjectOrAJSONString() {
        #expect(TapRoute.line(Array(#"{"a":1}"#.utf8)) == Array("{\"a\":1}\n".utf8))
        #expect(TapRoute.line(Array("plain text".utf8)) == Array("\"plain text\"\n".utf8))
        #expect(TapRoute.percentDecoded("my%20sink%2Fx") == "my sink/x")
    }

    @Test func ratesAreOverTheLastSecond() {
        let meter = RateMeter()
        var c = ComponentCounts()
        meter.observe(["s": c], at: 100.0)
        c.received = 300; c.emitted = 150
        meter.observe(["s": c], at: 100.5)
        c.received = 1000; c.emitted = 400
        // Against the newest sample at least a second old (t = 100.0).
        #expect(meter.rates(["s": c], at: 101.0)["s"] == RateMeter.Rate(inPerSecond: 1000, outPerSecond: 400))
        c.received = 1600
        #expect(meter.rates(["s": c], at: 101.5)["s"]?.inPerSecond == 1300)   // (1600 - 300) / 1.0
        #expect(RateMeter().rates(["s": c], at: 5)["s"] == nil, "no earlier sample: no rate yet")
    }
}
