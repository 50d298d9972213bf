import SluiceCore
import SluiceLua

/// Suspended UDF calls (HTTP lookups): a call is parked until its lookup answers, then resumed;
/// what followed the call runs then, and results are published in input order (`SuspendedWork`).
extension Worker {
    /// Parks the current event's call until its lookup answers; what follows the call runs on resume.
    func suspend(call: Int32, token: Int64, then: AfterSuspension, value: Payload, component: String) {
        suspended.park(token, SuspendedWork<Payload>.Call(
            call: call, event: currentIndex, then: then, value: value, component: component,
            context: SuspensionContext(current: current, time: currentTime, watermarkBefore: currentWatermarkBefore,
                                           source: currentSource, format: currentFormat)))
    }

    /// At the end of a batch: resumes suspended calls as their answers arrive, then publishes the
    /// deferred results in input order.
    func finishSuspended() {
        while suspended.hasCalls, let inbox = lookupInbox {
            for (token, answer) in inbox.wait() {
                guard let parked = suspended.take(token) else { continue }   // a call given up after a poisoning
                resume(parked, with: answer)
            }
        }
        for effect in suspended.drainEffects() {
            switch effect {
            case .sink(let sink, let bytes, let meta): sinkOut[sink].append(bytes, meta: meta)
            case .dead(let letter): dead.append(letter)
            case .route(let op, let input, let bytes, let context):
                restore(context)
                routeNow(bytes[...], to: op, input: input)
            }
        }
        suspended.reset()
    }

    func restore(_ c: SuspensionContext) {
        current = c.current
        currentTime = c.time
        currentWatermarkBefore = c.watermarkBefore
        currentSource = c.source
        currentFormat = c.format
    }

    func resume(_ parked: SuspendedWork<Payload>.Call, with answer: LuaResumeAnswer) {
        restore(parked.context)
        currentIndex = parked.event
        guard let engine else {   // cannot happen (a lost engine abandons its calls), but never drop the event
            deadLetter(component: parked.component, reason: "worker: the Lua engine was lost while this event's call was suspended",
                       detail: nil, event: current)
            suspended.finished(parked.event)
            _ = suspended.release(parked.event)
            return
        }
        var outputs: [LuaEventHandle] = []
        var truthy = false
        let result = engine.resume(parked.call, with: answer, meta: current.meta, truthy: &truthy, into: &outputs)
        live.append(contentsOf: outputs)
        var healthy = true
        switch result {
        case .success(.suspended(let call, let token)):
            var again = parked
            again.call = call
            suspended.park(token, again)
        case .failure(let failure):
            if case .outputs(let node) = parked.then { healthy = luaFailed(failure, component: parked.component, node: node) }
            else { healthy = luaFailed(failure, component: parked.component, node: nil) }
        case .success(.done):
            switch parked.then {
            case .outputs(let node):
                healthy = walkOutputs(outputs, of: node)
            case .filter(let node):
                var v = parked.value
                if truthy { healthy = walk(node, &v) }
            case .when(let sink):
                var v = parked.value
                if truthy { deliver(&v, to: sink) }
            }
        }
        suspended.finished(parked.event)
        releaseLive(event: parked.event)
        if let group = suspended.release(parked.event) { for h in group { engine.release(h) } }
        if !healthy { rebuildAfterPoison() }
    }
}
