// swift-tools-version: 6.1
// The benchmarks are a package of their own so that the main build and CI never build them.
// Run them from this folder: `swift package benchmark` (see README.md).
import PackageDescription

let package = Package(
    name: "RapportBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Rapport", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // Only for the raw-SQLite baselines: its `GRDBSQLite` module is the sqlite3 C API over the system libsqlite3,
        // the same library SQLiteStore links.
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    ],
    targets: [
        .executableTarget(
            name: "RapportBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Rapport", package: "Rapport"),
                .product(name: "RapportCore", package: "Rapport"),
                .product(name: "RapportMemory", package: "Rapport"),
                .product(name: "RapportSQLite", package: "Rapport"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            path: "Benchmarks/RapportBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        )
    ]
)
