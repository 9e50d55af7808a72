// swift-tools-version:6.0
import PackageDescription

/// One set of Swift settings for every target: Swift 6 language mode, strict concurrency.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let log = Target.Dependency.product(name: "Logging", package: "swift-log")
let metrics = Target.Dependency.product(name: "Metrics", package: "swift-metrics")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let hummingbird = Target.Dependency.product(name: "Hummingbird", package: "hummingbird")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

/// Declares a service: a library holding its logic and a thin executable holding only `@main`.
func service(_ name: String, executable: String, dependencies: [Target.Dependency] = []) -> [Target] {
    [
        .target(
            name: name,
            dependencies: ["ServiceKit", "Contracts", "Kafka", "Postgres", "FastText", log, hummingbird, argumentParser,
                           .product(name: "HTTPTypes", package: "swift-http-types")] + dependencies,
            path: "Services/\(name)/Library",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "\(name)Main",
            dependencies: [.target(name: name)],
            path: "Services/\(name)/Executable",
            swiftSettings: swiftSettings
        ),
    ]
}

let package = Package(
    name: "Funnel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "marketing-intake", targets: ["MarketingIntakeMain"]),
        .executable(name: "identity-merge", targets: ["IdentityMergeMain"]),
        .executable(name: "sales-dispatch", targets: ["SalesDispatchMain"]),
        .executable(name: "online-chat", targets: ["OnlineChatMain"]),
        .executable(name: "devbroker", targets: ["DevBroker"]),
        .executable(name: "funnel-bench", targets: ["FunnelBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
    ],
    targets: [
        // C libraries from Debian, reached through module maps.
        .systemLibrary(name: "CRdKafka", path: "Shared/CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CLibPQ", path: "Shared/CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Shared/COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "CPhoneNumber",
            path: "Shared/CPhoneNumber",
            linkerSettings: [.linkedLibrary("phonenumber"), .linkedLibrary("geocoding"), .linkedLibrary("icuuc"), .linkedLibrary("stdc++")]
        ),

        // Shared Swift modules.
        .target(name: "ThreadExecutor", path: "Shared/ThreadExecutor", swiftSettings: swiftSettings),
        .target(name: "FastText", path: "Shared/FastText", swiftSettings: swiftSettings),
        .target(name: "Kafka", dependencies: ["CRdKafka", "ThreadExecutor", log], path: "Shared/Kafka", swiftSettings: swiftSettings),
        .target(name: "Postgres", dependencies: ["CLibPQ", "COpenSSL", "ThreadExecutor", "FastText", log], path: "Shared/Postgres", swiftSettings: swiftSettings),
        .target(
            name: "Contracts",
            dependencies: ["Kafka", "FastText", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            path: "Shared/Contracts",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ServiceKit",
            dependencies: [
                "Kafka", "Postgres", "Contracts", "COpenSSL", "CPhoneNumber", "FastText", log, metrics, lifecycle, hummingbird,
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            path: "Shared/ServiceKit",
            swiftSettings: swiftSettings
        ),

        // The dev-only broker (librdkafka's mock cluster) for laptops and CI.
        .target(name: "BindInterpose", path: "Services/DevBroker/BindInterpose", linkerSettings: [.linkedLibrary("dl")]),
        .executableTarget(
            name: "DevBroker", dependencies: ["CRdKafka", "BindInterpose", argumentParser], path: "Services/DevBroker/Main",
            swiftSettings: swiftSettings
        ),

        // Benchmarks (`make bench`).
        .executableTarget(
            name: "FunnelBench",
            dependencies: [
                "Kafka", "Postgres", "Contracts", "ServiceKit", "TestSupport", argumentParser,
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Tests/Benchmarks",
            swiftSettings: swiftSettings
        ),

        // Test support: the embedded stack's addresses, unique names, devbroker control.
        .target(name: "TestSupport", dependencies: ["Kafka", "Postgres", "ThreadExecutor", log], path: "Tests/TestSupport", swiftSettings: swiftSettings),
        .testTarget(name: "KafkaTests", dependencies: ["Kafka", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "ContractsTests", dependencies: ["Contracts", "FastText", .product(name: "PropertyBased", package: "swift-property-based")],
                    swiftSettings: swiftSettings),
        .testTarget(
            name: "ServiceKitTests",
            dependencies: ["ServiceKit", "TestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MarketingIntakeTests",
            dependencies: ["MarketingIntake", "TestSupport", "ThreadExecutor", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OnlineChatTests",
            dependencies: ["OnlineChat", "TestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "HummingbirdWSClient", package: "hummingbird-websocket")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IdentityMergeTests",
            dependencies: ["IdentityMerge", "TestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SalesDispatchTests",
            dependencies: ["SalesDispatch", "TestSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: swiftSettings
        ),
    ] + service("MarketingIntake", executable: "marketing-intake", dependencies: [.product(name: "CSV", package: "CSV.swift"),
                                                                          .product(name: "SwiftProtobuf", package: "swift-protobuf")])
      + service("IdentityMerge", executable: "identity-merge", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")])
      + service("OnlineChat", executable: "online-chat", dependencies: [.product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                                                                   .product(name: "SwiftProtobuf", package: "swift-protobuf")])
      + service("SalesDispatch", executable: "sales-dispatch", dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf"), lifecycle, metrics])
)
