import Foundation
import Synchronization
import SluiceLua
import SluiceSpec

/// One lookup table: the current snapshot (swapped atomically by its refresher) and its counters.
final class LookupTable: Sendable {
    let spec: LookupSpec
    let file: FileLookupSpec
    private let current: Mutex<LookupSnapshot>
    let hits = Atomic<Int>(0)
    let misses = Atomic<Int>(0)
    let refreshFailures = Atomic<Int>(0)
    private let lastProblem = Mutex<String?>(nil)

    init(spec: LookupSpec, file: FileLookupSpec, first: LookupSnapshot) {
        self.spec = spec; self.file = file; current = Mutex(first)
    }

    /// The snapshot now in use (the lock is held only to copy the reference).
    var snapshot: LookupSnapshot { current.withLock { $0 } }
    /// The last failed refresh, cleared by the next good one (`/ready` shows it).
    var lastError: String? { lastProblem.withLock { $0 } }

    /// Re-reads the file; on success swaps the table in, otherwise keeps the old one and reports.
    func refresh(log: @Sendable (String, String) -> Void) {
        do {
            let next = try LookupSnapshot.load(file)
            current.withLock { $0 = next }
            lastProblem.withLock { $0 = nil }
        } catch {
            refreshFailures.add(1, ordering: .relaxed)
            let message = "lookup '\(spec.name)': refresh failed, keeping the previous table (\(snapshot.rows.count) rows): \(error)"
            lastProblem.withLock { $0 = "\(error)" }
            log("error", message)
        }
    }
}

/// The pipeline's lookup tables, read by every worker's `ctx.lookup` and refreshed in the background.
public final class LookupRegistry: LuaLookupProvider {
    let tables: [String: LookupTable]
    /// In spec order, for metrics and `/ready`.
    let ordered: [LookupTable]
    /// `http` lookups by name.
    let http: [String: HTTPLookup]
    private let httpOrdered: [HTTPLookup]
    /// Some lookup can suspend a UDF call (an HTTP one): workers run Lua stages as coroutines.
    var canSuspend: Bool { !http.isEmpty }
    private let stopped = Atomic<Bool>(false)
    private let log: @Sendable (String, String) -> Void

    /// Loads every table; a missing or malformed file is an error naming the file and line.
    init(_ specs: [LookupSpec], log: @escaping @Sendable (String, String) -> Void) throws(PipelineError) {
        var ordered: [LookupTable] = []
        var http: [HTTPLookup] = []
        for spec in specs {
            if case .http(let h) = spec.kind {
                http.append(try HTTPLookup(name: spec.name, spec: h))
                continue
            }
            guard case .file(let file) = spec.kind else { continue }
            do { ordered.append(LookupTable(spec: spec, file: file, first: try LookupSnapshot.load(file))) } catch {
                throw PipelineError(message: "\(spec.location): lookup '\(spec.name)': \(error)", kind: .input)
            }
        }
        self.ordered = ordered
        self.httpOrdered = http
        self.http = Dictionary(http.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.tables = Dictionary(ordered.map { ($0.spec.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.log = log
    }

    public func lookupRow(table: String, key: String, canSuspend: Bool) -> LuaLookupAnswer {
        guard let t = tables[table] else { return http[table]?.lookupNow(key) ?? .noTable }
        if let row = t.snapshot.rows[key] {
            t.hits.add(1, ordering: .relaxed)
            return .row(row)
        }
        t.misses.add(1, ordering: .relaxed)
        return .miss
    }

    /// Starts one refresher thread per table with `refresh:`; they end after `stop()`. (HTTP
    /// lookups run on their clients' threads from the start.)
    func start(_ group: DispatchGroup) {
        let log = log
        for t in ordered {
            switch t.spec.refresh {
            case .never: continue
            case .every(let ms):
                startThread("sluice-lookup-\(t.spec.name)", group) { [self] in
                    var next = DispatchTime.now().uptimeNanoseconds + UInt64(ms) * 1_000_000
                    while !isStopped {
                        usleep(UInt32(min(ms, 25)) * 1000)
                        if DispatchTime.now().uptimeNanoseconds >= next {
                            t.refresh(log: log)
                            next = DispatchTime.now().uptimeNanoseconds + UInt64(ms) * 1_000_000
                        }
                    }
                }
            case .watch:
                startThread("sluice-lookup-\(t.spec.name)", group) { [self] in
                    guard let watcher = LookupFileWatcher(path: t.file.path) else {
                        log("warning", "lookup '\(t.spec.name)': cannot watch \(t.file.path) (inotify); it is not refreshed")
                        return
                    }
                    while !isStopped {
                        guard watcher.wait(timeoutMs: 50) else { continue }
                        while watcher.wait(timeoutMs: 20) {}  // an editor's save dance is one refresh
                        t.refresh(log: log)
                    }
                }
            }
        }
    }

    private var isStopped: Bool { stopped.load(ordering: .acquiring) }
    func stop() {
        stopped.store(true, ordering: .releasing)
        for h in httpOrdered { h.stop() }
    }

    /// `/ready` lines.
    var readiness: [String] {
        ordered.map { t in
            "lookup \(t.spec.name): \(t.snapshot.rows.count) rows" + (t.lastError.map { ", LAST REFRESH FAILED: \($0)" } ?? "")
        } + httpOrdered.map { h in
            "lookup \(h.name): http, \(h.cachedEntries) cached, \(h.inFlight.load(ordering: .relaxed)) in flight, \(h.failures.load(ordering: .relaxed)) failed"
        }
    }

    /// Prometheus families (rows, hits, misses, refresh failures per lookup).
    func metrics(pipelineLabel p: String, escape: (String) -> String) -> [String] {
        var out: [String] = []
        func family(_ name: String, _ type: String, _ help: String, _ value: (LookupTable) -> Int) {
            out.append("# HELP \(name) \(help)")
            out.append("# TYPE \(name) \(type)")
            for t in ordered { out.append("\(name){\(p),lookup=\"\(escape(t.spec.name))\"} \(value(t))") }
        }
        family("sluice_lookup_rows", "gauge", "Rows in the lookup table now in use.") { $0.snapshot.rows.count }
        family("sluice_lookup_hits_total", "counter", "ctx.lookup calls that found a row.") { $0.hits.load(ordering: .relaxed) }
        family("sluice_lookup_misses_total", "counter", "ctx.lookup calls for an unknown key.") { $0.misses.load(ordering: .relaxed) }
        family("sluice_lookup_refresh_failures_total", "counter", "Refreshes that failed (the old table was kept).") {
            $0.refreshFailures.load(ordering: .relaxed)
        }
        func httpFamily(_ name: String, _ type: String, _ help: String, _ value: (HTTPLookup) -> Int) {
            guard !httpOrdered.isEmpty else { return }
            out.append("# HELP \(name) \(help)")
            out.append("# TYPE \(name) \(type)")
            for h in httpOrdered { out.append("\(name){\(p),lookup=\"\(escape(h.name))\"} \(value(h))") }
        }
        httpFamily("sluice_lookup_http_requests_total", "counter", "HTTP requests started (every attempt).") { $0.requests.load(ordering: .relaxed) }
        httpFamily("sluice_lookup_http_in_flight", "gauge", "HTTP requests in flight now.") { $0.inFlight.load(ordering: .relaxed) }
        httpFamily("sluice_lookup_http_cache_hits_total", "counter", "ctx.lookup calls answered from the cache.") { $0.cacheHits.load(ordering: .relaxed) }
        httpFamily("sluice_lookup_http_coalesced_total", "counter", "ctx.lookup calls that joined a request already in flight for their key.") {
            $0.coalesced.load(ordering: .relaxed)
        }
        httpFamily("sluice_lookup_http_retries_total", "counter", "Attempts retried after a 5xx, a 429 or a connection failure.") { $0.retries.load(ordering: .relaxed) }
        httpFamily("sluice_lookup_http_failures_total", "counter", "Keys whose lookup failed after its retries.") { $0.failures.load(ordering: .relaxed) }
        httpFamily("sluice_lookup_http_cached", "gauge", "Answers in the cache.") { $0.cachedEntries }
        return out
    }
}
