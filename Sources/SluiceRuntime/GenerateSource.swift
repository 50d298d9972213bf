import Foundation
import SluiceCore
import SluiceLua

/// `generate: { count, rate, udf }`: events made by a Lua function, called as `f({seq = n}, ctx)`
/// with n = 1, 2, ...; it returns the event (or nil to skip n). Paced to `rate` events/s if given.
/// A call that fails or returns anything but objects is dead-lettered (the event is the seed `{"seq":n}`).
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
            if let lookups = lua.lookups { engine.setLookups(lookups) }
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
            var rejection: (reason: String, detail: String?)?
            switch engine.map(fn, h, meta: nil, into: &outputs) {
            case .success:
                if let problem = EventShapeCheck.problem(outputs, engine: engine, what: "generate must return an event (an object) or nil") {
                    rejection = (problem, nil)
                    break
                }
                var encoded: [[UInt8]] = []
                for o in outputs {
                    var bytes: [UInt8] = []
                    if case .failure(let failure) = engine.encodeJSON(o, into: &bytes) {
                        rejection = (failure.description, nil)
                        break
                    }
                    encoded.append(bytes)
                }
                if rejection == nil { for bytes in encoded { events.append(Event(bytes: bytes, position: Int64(n))) } }
            case .failure(let failure):
                rejection = (failure.message, failure.traceback)
            }
            for o in outputs { engine.release(o) }
            if let rejection {
                let dead = DeadLetter(component: name, reason: "\(module).\(function): \(rejection.reason)", detail: rejection.detail,
                                      source: name, event: Event(bytes: seed, position: Int64(n)))
                if let sink = outlet.deadLetters { sink([dead]) } else {
                    lua.log("error", "source '\(name)': \(module).\(function) failed for event \(n): \(rejection.reason)")
                }
            }
            if engine.isPoisoned {
                outlet.emit(events)   // what was generated before stays; the failed event was dead-lettered
                throw SourceError(source: name, message: "\(module).\(function) went over the Lua memory limit at event \(n)")
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
