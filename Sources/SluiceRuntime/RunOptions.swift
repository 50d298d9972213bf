import Foundation
import SluiceCore

/// How a pipeline run is wired to the outside world.
public struct RunOptions: Sendable {
    /// Replace every source by these in-memory events (`sluice test`); sources not named get none.
    public var sourceOverrides: [String: [Event]]?
    /// Keep sink and dead letter output in memory instead of writing it (`sluice test`).
    public var captureSinks: Bool
    /// Where the engine and UDFs log: (level, message).
    public var log: @Sendable (String, String) -> Void
    /// `settings.max_event_bytes`: larger events are dead-lettered `too_large`, and the line readers
    /// cut longer lines at this length plus one byte (so they are dead-lettered, not buffered).
    public var maxEventBytes = EventLimits.defaultMaxEventBytes

    public init(sourceOverrides: [String: [Event]]? = nil, captureSinks: Bool = false,
                log: @escaping @Sendable (String, String) -> Void = RunOptions.stderrLog) {
        self.sourceOverrides = sourceOverrides; self.captureSinks = captureSinks; self.log = log
    }

    /// Logs to stderr (as JSON objects with `SLUICE_LOG_FORMAT=json`); `debug` lines only when `SLUICE_LOG=debug`.
    public static let stderrLog: @Sendable (String, String) -> Void = { level, message in
        if level == "debug" && !debugLogging { return }
        LogLine.write(level: level, message: message)
    }

    static let debugLogging = ProcessInfo.processInfo.environment["SLUICE_LOG"] == "debug"
}
