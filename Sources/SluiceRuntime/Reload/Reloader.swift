import Foundation
import Synchronization
import SluiceLua
import SluiceSpec

/// Hot reload of Lua UDFs. On a trigger — a `.lua` change under `udfs.reload: watch`, or SIGHUP in
/// `watch` and `signal` modes — it copies the UDF directory, compiles every function the pipeline
/// uses in a fresh Lua state (off the hot path), runs each used module's optional `M.selftest()`,
/// and only then publishes the copy as the next version. Workers switch at their next batch.
/// Any failure keeps the running version and is logged as `file:line: message`.
final class Reloader: Sendable {
    let live: LiveCode
    private let snapshots: CodeSnapshots
    private let plan: Plan
    private let lua: LuaSettings
    private let mode: ReloadMode
    private let requested = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let published = Atomic<Int>(0)
    private let rejected = Atomic<Int>(0)
    private let lastProblem = Mutex<String?>(nil)

    /// The message of the last rejected reload, cleared when a reload goes live (`/ready` shows it).
    var lastError: String? { lastProblem.withLock { $0 } }

    /// Takes the first snapshot (version 1). Returns nil when reload is `off`.
    init?(mode: ReloadMode, udfDir: String, plan: Plan, lua: LuaSettings) throws {
        guard mode != .off else { return nil }
        self.mode = mode
        self.plan = plan
        self.lua = lua
        snapshots = CodeSnapshots(source: udfDir)
        live = LiveCode(LiveCode.Version(number: 1, dir: try snapshots.take(1)))
    }

    /// SIGHUP: reload as soon as possible.
    func requestReload() { requested.store(true, ordering: .releasing) }

    func stop() { stopped.store(true, ordering: .releasing) }

    /// Versions published and attempts rejected so far (for the run report).
    var counts: (published: Int, rejected: Int) { (published.load(ordering: .relaxed), rejected.load(ordering: .relaxed)) }

    /// The reloader thread: wait for a trigger, let a burst of changes settle, reload.
    func run() {
        let watcher = mode == .watch ? UDFWatcher(dir: snapshots.source) : nil
        if mode == .watch && watcher == nil { lua.log("warning", "cannot watch \(snapshots.source) (inotify); UDFs reload on SIGHUP only") }
        while !stopped.load(ordering: .acquiring) {
            var trigger = watcher?.wait(timeoutMs: 25) ?? { usleep(25_000); return false }()
            if requested.exchange(false, ordering: .acquiringAndReleasing) { trigger = true }
            guard trigger else { continue }
            // Debounce: one `git checkout` or an editor's save dance is one reload.
            if let watcher { while watcher.wait(timeoutMs: 15) {} }
            reload()
        }
        snapshots.removeAll()
    }

    func reload() {
        let next = live.current.number + 1
        let dir: String
        do {
            dir = try snapshots.take(next)
        } catch {
            rejected.add(1, ordering: .relaxed)
            lua.log("error", "UDF reload failed: cannot copy \(snapshots.source): \(error); keeping version \(next - 1)")
            return
        }
        if let problem = Self.check(dir: dir, version: next, plan: plan, lua: lua) {
            snapshots.discard(next)
            rejected.add(1, ordering: .relaxed)
            lastProblem.withLock { $0 = problem }
            lua.log("error", "UDF reload rejected, keeping version \(next - 1): \(problem)")
            return
        }
        live.publish(LiveCode.Version(number: next, dir: dir))
        // A version is read (and pinned) only while current, so an unpinned older one is gone for good.
        snapshots.prune { $0 >= next || live.isPinned($0) }
        lastProblem.withLock { $0 = nil }
        published.add(1, ordering: .relaxed)
        lua.log("info", "UDF version \(next) is live")
    }

    /// Compiles everything `plan` uses from `dir` and runs the used modules' self-tests.
    /// Returns a message naming the file, line and the component that needs it, or nil if all is well.
    static func check(dir: String, version: Int, plan: Plan, lua: LuaSettings) -> String? {
        let engine: LuaEngine
        do {
            engine = try LuaEngine(udfDir: dir, limits: lua.limits, version: version, log: lua.log)
        } catch {
            return "\(error)"
        }
        var modules: [String] = []
        for code in plan.luaCode {
            guard case .udf(let module, let function) = code else { continue }
            do {
                _ = try engine.function(module: module, name: function)
            } catch {
                return "\(error) (\(module).\(function) is used by \(plan.users(of: code)))"
            }
            if !modules.contains(module) { modules.append(module) }
        }
        for module in modules {
            guard let selftest = try? engine.function(module: module, name: "selftest") else { continue }
            guard case .success(let h) = engine.decodeJSON(Array("{}".utf8)) else { continue }
            // It fails by raising an error (`assert`) or by returning false; nil, true or a table pass.
            let users = plan.luaCode.filter { code in
                if case .udf(let m, _) = code { return m == module } else { return false }
            }.map { plan.users(of: $0) }.joined(separator: ", ")
            var outputs: [LuaEventHandle] = []
            switch engine.map(selftest, h, meta: nil, into: &outputs) {
            case .success: continue
            case .failure(let failure) where failure.kind == .badReturn:
                // Not nil or a table: judge it by its truthiness.
                if case .success(true) = engine.test(selftest, h, meta: nil) { continue }
                let file = URL(fileURLWithPath: dir).lastPathComponent + "/" + module.replacingOccurrences(of: ".", with: "/") + ".lua"
                return "\(file): \(module).selftest returned false (module \(module) is used by \(users))"
            case .failure(let failure):
                return "\(failure.message) (\(module).selftest failed; module \(module) is used by \(users))"
            }
        }
        return nil
    }
}

extension Plan {
    /// Names of the components that run `code`, for messages.
    func users(of code: LuaCode) -> String {
        var names: [String] = []
        for node in nodes {
            switch node.operation {
            case .filter(.lua(let r)) where r.code == code: names.append(node.name)
            case .map(let r) where r.code == code, .flatMap(let r) where r.code == code: names.append(node.name)
            default: break
            }
            for edge in node.downstream {
                if case .sink(let s, .lua(let r)?) = edge, r.code == code, !names.contains(sinks[s].name) { names.append(sinks[s].name) }
            }
        }
        return names.map { "'\($0)'" }.joined(separator: ", ")
    }
}
