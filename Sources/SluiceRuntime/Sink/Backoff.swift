import SluiceSpec

/// The delays of a sink's `retry:` policy: a pure function of the attempt number and a random draw,
/// so it is tested without clocks.
///
/// Retry `n` (1 = the first retry) waits `min * 2^(n-1)`, capped at `max`, with "equal jitter": a
/// uniform draw from the upper half of that, never below `min`. A server's `Retry-After` is
/// honoured as the delay (at least `min`, at most `retryAfterCeiling`).
struct Backoff: Sendable, Equatable {
    /// Retries after the first attempt.
    var maxRetries: Int
    var min: Duration
    var max: Duration
    /// A `Retry-After` longer than this is cut to it (a confused server cannot park a sink for hours).
    var retryAfterCeiling: Duration = .seconds(300)

    init(maxRetries: Int, min: Duration, max: Duration) {
        self.maxRetries = maxRetries; self.min = min; self.max = max
    }

    init(_ spec: RetrySpec) {
        self.init(maxRetries: spec.max, min: .milliseconds(spec.minBackoff), max: .milliseconds(spec.maxBackoff))
    }

    /// The wait before retry `retry` (1-based). `unit` is a uniform draw from 0...1.
    func delay(retry: Int, retryAfter: Duration? = nil, unit: Double) -> Duration {
        if let hint = retryAfter { return Swift.min(Swift.max(hint, min), retryAfterCeiling) }
        let minMs = Double(min.milliseconds), maxMs = Double(max.milliseconds)
        let exponent = Double(Swift.min(Swift.max(retry - 1, 0), 60))
        let ceiling = Swift.min(minMs * Double.pow2(exponent), maxMs)
        let low = Swift.max(minMs, ceiling / 2)
        let drawn = low + (ceiling - low) * Swift.min(Swift.max(unit, 0), 1)
        return .milliseconds(Int64(drawn.rounded()))
    }
}

extension Duration {
    /// Whole milliseconds (rounded down).
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

private extension Double {
    static func pow2(_ e: Double) -> Double { (0..<Int(e)).reduce(1.0) { r, _ in r * 2 } }
}
