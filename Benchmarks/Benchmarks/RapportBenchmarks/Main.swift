import Benchmark

// The entry point the ordo-one benchmark plugin looks for. Every benchmark does its setup (building stores and
// inputs) outside the measured part, and prints what it compares to (a goal, a raw baseline) in the same run.
let benchmarks: @Sendable () -> Void = {
    registerIngestBenchmarks()
    registerCustomer360Benchmarks()
    registerIdentityResolutionBenchmarks()
    registerRulesBenchmarks()
}
