// swift-tools-version:6.0
// Micro-benchmark of the declarative hot path (validate + match + project) on W1 lines.
// Sources/CSluiceJSON and Sources/SluiceCore are symlinks to the real targets.
import PackageDescription
let package = Package(
    name: "jsonbench",
    targets: [
        .target(name: "CSluiceJSON", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "SluiceCore", dependencies: ["CSluiceJSON"]),
        .executableTarget(name: "jsonbench", dependencies: ["SluiceCore"],
                          swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
    ],
    swiftLanguageModes: [.v6]
)
