import SluiceCore
import SluiceLua

/// Delivering to sinks, dead letters and taps, and the conversions between an event's bytes and
/// its Lua value.
extension Worker {
    /// Dead-letters the current event for a Lua failure. Returns false if the state is poisoned.
    func luaFailed(_ failure: LuaFailure, component: String, node: Int?) -> Bool {
        if let node { rejected[node] += 1 }
        deadLetter(component: component, reason: failure.message, detail: failure.traceback, event: current)
        return !(engine?.isPoisoned ?? false)
    }

    /// `last`: nothing downstream of the node follows this sink, so a Lua value is encoded straight
    /// into the sink's batch (its bytes are not kept for later edges).
    func deliver(_ value: inout Payload, to sink: Int, last: Bool = false) {
        sinkReceived[sink] += 1
        let format = plan.sinks[sink].format
        switch value {
        case .bytes(let b):
            append(b, to: sink)
        case .lua(_, let original?):
            append(original, to: sink)
        case .lua(let h, nil):
            guard let engine else { return }
            if last, format == .json, !suspended.deferring(currentIndex) {
                encode(h, into: sink, engine: engine)
                return
            }
            var out: [UInt8] = []
            let result = format == .text ? engine.encodeText(h, into: &out) : engine.encodeJSON(h, into: &out)
            switch result {
            case .success:
                append(out[...], to: sink)
                if format == .json { value = .lua(h, original: out[...]) }
            case .failure(let failure):
                deadLetter(component: plan.sinks[sink].name, reason: failure.message, detail: failure.traceback, event: current)
            }
        }
    }

    /// Encodes the Lua value `h` straight into the sink's batch as JSON, or dead-letters the
    /// current event with the reason it cannot be encoded.
    func encode(_ h: LuaEventHandle, into sink: Int, engine: LuaEngine) {
        var failure: LuaFailure?
        let written = sinkOut[sink].appendWritten(meta: current.meta, distinctKeys: true) { data in
            if case .failure(let f) = engine.encodeJSON(h, into: &data) { failure = f; return false }
            return true
        }
        if !written, let failure {
            deadLetter(component: plan.sinks[sink].name, reason: failure.message, detail: failure.traceback, event: current)
        }
    }

    /// A copy of the value's bytes for a tap, without side effects (a failed encoding samples nothing).
    func sample(_ value: Payload) -> [UInt8]? {
        switch value {
        case .bytes(let b): return Array(b)
        case .lua(_, let original?): return Array(original)
        case .lua(let h, nil):
            guard let engine else { return nil }
            var out: [UInt8] = []
            let result = currentFormat == .text ? engine.encodeText(h, into: &out) : engine.encodeJSON(h, into: &out)
            if case .success = result { return out }
            return nil
        }
    }

    /// Taps on the inner nodes of a fused declarative chain: their output is never built on the
    /// event path, so a waiting tap runs the chain up to that node on the input.
    func sampleFused(_ through: [Int], _ bytes: ArraySlice<UInt8>, _ taps: TapPoints) {
        for (j, n) in through.dropLast().enumerated() where taps.isWaiting(n) {
            guard let prefix = plan.fusedPrefixes[through[0]]?[j] else { continue }
            taps.offer(n) {
                var out: [UInt8] = []
                return bytes.withUnsafeBytes { prefix.run($0, into: &out, validate: true) } == .kept ? out : nil
            }
        }
    }

    /// Adds an event to a sink's batch, or to the deferred results while earlier events wait for lookups.
    func append(_ bytes: ArraySlice<UInt8>, to sink: Int) {
        if suspended.deferring(currentIndex) {
            suspended.postpone(.sink(sink, Array(bytes), current.meta), for: currentIndex)
        } else {
            sinkOut[sink].append(bytes, meta: current.meta)
        }
    }

    /// The value as JSON bytes (encoding a Lua table once and remembering the result).
    func bytes(_ value: inout Payload, component: String) -> ArraySlice<UInt8>? {
        switch value {
        case .bytes(let b): return b
        case .lua(_, let original?): return original
        case .lua(let h, nil):
            guard let engine else { return nil }
            var out: [UInt8] = []
            switch engine.encodeJSON(h, into: &out) {
            case .success:
                value = .lua(h, original: out[...])
                return out[...]
            case .failure(let failure):
                deadLetter(component: component, reason: failure.message, detail: failure.traceback, event: current)
                return nil
            }
        }
    }

    /// The value as a Lua handle (decoding bytes once and remembering the handle).
    func handle(_ value: inout Payload, component: String, fields: LuaFieldSet? = nil) -> LuaEventHandle? {
        switch value {
        case .lua(let h, _): return h
        case .bytes(let b):
            guard let engine else { return nil }
            if currentFormat == .text {
                let h = b.withUnsafeBytes { engine.decodeText($0) }
                live.append(h)
                value = .lua(h, original: b)
                return h
            }
            guard let h = decode(b, component: component, fields: fields, engine: engine) else { return nil }
            value = .lua(h, original: b)
            return h
        }
    }

    /// A JSON event as a live Lua value (only `fields`, nil = all), or nil after dead-lettering
    /// the current event as `component`'s when it cannot be decoded.
    func decode(_ bytes: ArraySlice<UInt8>, component: String, fields: LuaFieldSet?, engine: LuaEngine) -> LuaEventHandle? {
        switch bytes.withUnsafeBytes({ engine.decodeJSON($0, fields: fields) }) {
        case .success(let h):
            live.append(h)
            return h
        case .failure(let failure):
            deadLetter(component: component, reason: failure.message, detail: failure.traceback, event: current)
            return nil
        }
    }

    func deadLetter(component: String, reason: String, detail: String?, event: Event) {
        let letter = DeadLetter(component: component, reason: reason, detail: detail,
                                source: plan.nodes[currentSource].name, event: event)
        if suspended.deferring(currentIndex) { suspended.postpone(.dead(letter), for: currentIndex) } else { dead.append(letter) }
    }
}
