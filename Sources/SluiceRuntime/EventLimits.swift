/// Byte bounds on single events, so that one huge line or message cannot take the memory the
/// event-count queue capacities were meant to bound.
public enum EventLimits {
    /// `settings.max_event_bytes` when the spec does not set it: 1 MiB.
    public static let defaultMaxEventBytes = 1 << 20

    /// The dead-letter reason for an event over the limit. A line the line reader had to cut
    /// (it keeps `max + 1` bytes of it) is reported as such.
    static func tooLarge(_ size: Int, max: Int) -> String {
        max < Int.max && size == max + 1
            ? "too_large: a line longer than max_event_bytes (\(max) bytes); its first \(size) bytes are kept in the event"
            : "too_large: event of \(size) bytes is over max_event_bytes (\(max) bytes)"
    }
}
