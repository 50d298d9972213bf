import Foundation

/// A seeded random generator (SplitMix64) for the fuzz-style tests: the seed comes from
/// `SLUICE_TEST_SEED` or a fixed default, and is printed, so any failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    let seed: UInt64

    init(test: String, default seed: UInt64) {
        self.seed = ProcessInfo.processInfo.environment["SLUICE_TEST_SEED"].flatMap { UInt64($0) } ?? seed
        state = self.seed
        print("\(test): seed \(self.seed) (replay with SLUICE_TEST_SEED=\(self.seed))")
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
