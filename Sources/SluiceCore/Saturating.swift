/// Counter arithmetic that clamps at the type's bounds instead of trapping on overflow.
/// Counters are for people reading metrics: a pinned maximum is informative, a crash is not.
extension FixedWidthInteger {
    /// `self + other`, clamped to `min...max`.
    @inlinable
    public func saturatingAdd(_ other: Self) -> Self {
        let (sum, overflow) = addingReportingOverflow(other)
        guard overflow else { return sum }
        return other > 0 ? .max : .min
    }

    /// Adds `other` in place, clamped to `min...max`.
    @inlinable
    public mutating func saturatingIncrement(by other: Self) {
        self = saturatingAdd(other)
    }
}
