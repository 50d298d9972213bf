// swift-tools-version:6.0
import PackageDescription

/// The event path is guarded by ownership (one worker owns its state and its Lua engine, one source
/// thread its Kafka consumer), so dynamic exclusivity checks only cost time there. Checked builds
/// (debug, tests) keep them.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

// Linux only: the runtime uses Glibc, inotify and Debian system libraries.
let package = Package(
    name: "sluice",
    products: [
        .executable(name: "sluice", targets: ["sluice"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
    ],
    targets: [
        // System libraries (Debian: liblua5.4-dev, libyaml-dev, librdkafka-dev).
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        .systemLibrary(name: "CYaml", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        // Libraries opened with dlopen when a pipeline first uses them, never linked, so other pipelines
        // do not map them: libcurl (HTTP sink and lookups) and libmemcached (memcached sink). Headers
        // from libcurl4-openssl-dev and libmemcached-dev; at run time libcurl4 and libmemcached11.
        .target(name: "CSluiceDynamic"),
        .target(name: "CCurl", dependencies: ["CSluiceDynamic"]),
        .target(name: "CMemcached", dependencies: ["CSluiceDynamic"]),

        // Hot-path C: JSON scanning without Lua, and the JSON <-> Lua bridge with sandbox and limits.
        .target(name: "CSluiceJSON", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "CSluiceLua", dependencies: ["CLua", "CSluiceJSON"], cSettings: [.unsafeFlags(["-O3"])]),

        .target(name: "SluiceCore", dependencies: ["CSluiceJSON", .product(name: "DequeModule", package: "swift-collections")],
                swiftSettings: hotPath),
        .target(name: "SluiceSpec", dependencies: ["CYaml", "SluiceCore"]),
        .target(name: "SluiceLua", dependencies: ["CSluiceLua", "SluiceCore"], swiftSettings: hotPath),
        .target(name: "SluiceRuntime", dependencies: ["SluiceCore", "SluiceSpec", "SluiceLua", "SluiceKafka", "SluiceHTTP", "CMemcached"],
                swiftSettings: hotPath),
        // A libcurl-multi HTTP client (one I/O thread per client): the HTTP sink; reusable by lookups.
        .target(name: "SluiceHTTP", dependencies: ["CCurl"]),
        .target(name: "SluiceKafka", dependencies: ["CRdKafka", "SluiceCore", "CSluiceJSON"], swiftSettings: hotPath),
        .executableTarget(name: "sluice", dependencies: [
            "SluiceRuntime", "SluiceSpec", "SluiceCore", "SluiceKafka",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "SluiceCoreTests", dependencies: ["SluiceCore"]),
        .testTarget(name: "SluiceSpecTests", dependencies: ["SluiceSpec"]),
        .testTarget(name: "SluiceLuaTests", dependencies: ["SluiceLua"]),
        .testTarget(name: "SluiceRuntimeTests", dependencies: ["SluiceRuntime", "SluiceHTTP", "CSluiceDynamic"]),
        .testTarget(name: "EndToEndTests", dependencies: [], exclude: ["golden"]),
        .testTarget(name: "SluiceKafkaTests", dependencies: ["SluiceKafka", "SluiceCore"]),
    ],
    swiftLanguageModes: [.v6]
)
