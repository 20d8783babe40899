// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Strata",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "strata", targets: ["strata"])
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.9.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .target(name: "StrataCore"),
        .target(
            name: "StrataResources",
            path: ".",
            // The repository root is this target's folder so that Migrations/, Projections/ and Schemas/
            // stay at the top level, where a reader looks for them; everything else is excluded. The web
            // UI's files live beside this target's code.
            exclude: [
                "README.md", "Package.swift", "Tests", "Sources/StrataCore", "Sources/StrataStore",
                "Sources/EmbeddedPostgres", "Sources/StrataHTTP", "Sources/strata", "Sources/BrowserDriver", "docs",
            ],
            sources: ["Sources/StrataResources/StrataResources.swift"],
            resources: [
                .copy("Migrations"), .copy("Projections"), .copy("Schemas"), .copy("Sources/StrataResources/UI"),
            ]
        ),
        .target(
            name: "StrataStore",
            dependencies: [
                "StrataCore", "StrataResources",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // For ConnectionPoolError, which PostgresClient throws when it gives up connecting.
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "EmbeddedPostgres",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        .target(
            // Headless Chromium over WebDriver, for the web UI's tests and `strata bench ui`.
            name: "BrowserDriver",
            dependencies: ["EmbeddedPostgres", .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        .target(
            name: "StrataHTTP",
            dependencies: [
                "StrataCore", "StrataStore", "StrataResources",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "strata",
            dependencies: [
                "StrataHTTP", "StrataStore", "EmbeddedPostgres", "BrowserDriver",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // The bench's load generator and its latency histograms.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(
            name: "StrataTestSupport",
            dependencies: [
                "EmbeddedPostgres", "StrataStore", "StrataCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/StrataTestSupport"
        ),
        .testTarget(name: "StrataCoreTests", dependencies: ["StrataCore", "StrataTestSupport"]),
        .testTarget(
            name: "EmbeddedPostgresTests",
            // The CLI's binary is a dependency so the tests can run it as another process or user.
            dependencies: ["EmbeddedPostgres", "StrataTestSupport", "strata"]
        ),
        .testTarget(
            name: "StrataStoreTests",
            dependencies: ["StrataStore", "StrataTestSupport", "strata"]
        ),
        .testTarget(
            name: "StrataSystemTests",
            // Tests that run `strata serve` as a process and break what it stands on: its database, its
            // connections, the process itself.
            dependencies: [
                "StrataTestSupport", "EmbeddedPostgres", "strata", "BrowserDriver",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "StrataHTTPTests",
            dependencies: [
                "StrataHTTP", "StrataTestSupport", "EmbeddedPostgres",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
    ]
)
