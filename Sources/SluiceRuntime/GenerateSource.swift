import Foundation
import SluiceCore
import SluiceLua

/// `generate: { count, rate, udf }`: events made by a Lua function, called as `f({seq = n}, ctx)`
/// with n = 1, 2, ...; it returns the event (or nil to skip n). Paced to `rate` events/s if given.
struct GenerateSource: EventSource {
    var name: String
    var count: Int?
    var ratePerSecond: Double?
    var module: String
    var function: String
    var lua: LuaSettings

    func run(batchSize: Int, stop: StopFlag, outlet: SourceOutlet) throws(SourceError) {
        let engine: LuaEngine
        let fn: LuaFunctionID
        do {
            engine = try LuaEngine(udfDir: lua.udfDir, limits: lua.limits, version: lua.version, log: lua.log)
            fn = try engine.function(module: module, name: function)
        } catch {
            throw SourceError(source: name, message: error.description)
        }
        let perBatch = ratePerSecond.map { max(1, min(batchSize, Int($0 / 20))) } ?? batchSize
        let start = Date()
        var n = 0
        var events: [Event] = []
        var outputs: [LuaEventHandle] = []
        while !stop.isSet, count.map({ n < $0 }) ?? true {
            n += 1
            let seed = Array("{\"seq\":\(n)}".utf8)
            guard case .success(let h) = seed.withUnsafeBytes({ engine.decodeJSON($0) }) else { continue }
            outputs.removeAll(keepingCapacity: true)
            switch engine.map(fn, h, meta: nil, into: &outputs) {
            case .success:
                for o in outputs {
                    var bytes: [UInt8] = []
                    if case .success = engine.encodeJSON(o, into: &bytes) {
                        events.append(Event(bytes: bytes, position: Int64(n)))
                    } else {
                        lua.log("error", "source '\(name)': event \(n) from \(module).\(function) cannot be encoded as JSON")
                    }
                    engine.release(o)
                }
            case .failure(let failure):
                lua.log("error", "source '\(name)': \(module).\(function) failed for event \(n): \(failure.message)")
            }
            engine.release(h)
            if events.count >= perBatch {
                outlet.emit(events)
                events.removeAll(keepingCapacity: true)
                if let rate = ratePerSecond {
                    let due = Double(n) / rate - Date().timeIntervalSince(start)
                    if due > 0 { Thread.sleep(forTimeInterval: due) }
                }
            }
        }
        if !events.isEmpty { outlet.emit(events) }
    }
}
