// swift-tools-version: 6.1
import PackageDescription

let upcoming: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Rapport",
    platforms: [.macOS(.v15)],
    products: [
        // The engine and the public library API.
        .library(name: "Rapport", targets: ["Rapport"]),
        // Domain values, errors, clocks and the storage protocols.
        .library(name: "RapportCore", targets: ["RapportCore"]),
        // The in-memory backend: real, fast, for tests and small embedded uses.
        .library(name: "RapportMemory", targets: ["RapportMemory"]),
        // The SQLite backend (GRDB over the system libsqlite3).
        .library(name: "RapportSQLite", targets: ["RapportSQLite"]),
        // A one-line in-memory engine with a manual clock, for the test suites of apps that embed Rapport.
        .library(name: "RapportTesting", targets: ["RapportTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "RapportCore",
            swiftSettings: upcoming
        ),
        .target(
            name: "Rapport",
            dependencies: [
                "RapportCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "RapportMemory",
            dependencies: ["RapportCore"],
            swiftSettings: upcoming
        ),
        .target(
            name: "RapportSQLite",
            dependencies: [
                "RapportCore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: upcoming
        ),
        .target(
            name: "RapportTesting",
            dependencies: ["Rapport", "RapportCore", "RapportMemory", .product(name: "Logging", package: "swift-log")],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RapportCoreTests",
            dependencies: ["RapportCore"],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RapportStorageTests",
            dependencies: ["RapportCore", "RapportMemory", "RapportSQLite"],
            swiftSettings: upcoming
        ),
        .testTarget(
            name: "RapportTests",
            dependencies: [
                "Rapport", "RapportCore", "RapportMemory", "RapportSQLite", "RapportTesting", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: upcoming
        ),
    ]
)
