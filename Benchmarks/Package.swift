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
        // Only for LoadGenerator, a gRPC client of the release rapport-server (not a benchmark-plugin target).
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0", traits: []),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .executableTarget(
            name: "RapportBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Rapport", package: "Rapport"),
                .product(name: "RapportCore", package: "Rapport"),
                .product(name: "RapportMemory", package: "Rapport"),
                .product(name: "RapportRules", package: "Rapport"),
                .product(name: "RapportSQLite", package: "Rapport"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            path: "Benchmarks/RapportBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        // `swift run -c release LoadGenerator`: starts the release rapport-server and measures it over loopback gRPC
        // (see README.md). Its folder's parent must not be named `Benchmarks`, or the benchmark plugin would take it
        // for a benchmark. Sources/Generated holds client stubs made by generate-stubs.sh (committed).
        .executableTarget(
            name: "LoadGenerator",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "LoadGenerator/Sources"
        ),
    ]
)
