import Foundation
import SluiceCore

/// What a log line on stderr looks like: `sluice: LEVEL: message` by default, or with
/// `SLUICE_LOG_FORMAT=json` one JSON object per line for container log collectors:
/// `{"time":"2026-12-01T16:20:00.123Z","level":"info","message":"UDF version 2 is live"}`.
public enum LogLine {
    /// True when `SLUICE_LOG_FORMAT=json`.
    public static let json = ProcessInfo.processInfo.environment["SLUICE_LOG_FORMAT"] == "json"

    /// The line for `message` at `level`, newline included. In text form `message` is printed as
    /// given when `prefixed` is false (messages that carry their own `file:line:` or `sluice:` prefix).
    public static func render(level: String, message: String, prefixed: Bool = true) -> String {
        guard json else { return (prefixed ? "sluice: \(level): " : "") + message + "\n" }
        let text = message.hasPrefix("sluice: ") ? String(message.dropFirst(8)) : message
        let value = JSONValue.object([("time", .string(timestamp())), ("level", .string(level)), ("message", .string(text))])
        return value.jsonText + "\n"
    }

    /// Writes one line to stderr (a single write, so lines from different threads never interleave).
    public static func write(level: String, message: String, prefixed: Bool = true) {
        FileHandle.standardError.write(Data(render(level: level, message: message, prefixed: prefixed).utf8))
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var t = now.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), now.tv_nsec / 1_000_000)
    }
}
