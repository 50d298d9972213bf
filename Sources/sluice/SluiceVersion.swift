/// The version `sluice --version` prints. Bump it with each release.
enum SluiceVersion {
    static let current = "0.1.0"
}
