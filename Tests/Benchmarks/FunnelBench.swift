import ArgumentParser
import Foundation

/// `make bench`: measured numbers for the README and the issue notes. Runs against the bench stack that
/// deploy/local/bench.sh starts (its own PostgreSQL with fsync on and its own devbroker).
@main
struct FunnelBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "funnel-bench",
        abstract: "Funnel benchmarks (run through `make bench`).",
        subcommands: [KafkaBench.self, IntakePipelineBench.self, OutboxChurnBench.self, HTTPLatencyBench.self, IdentityBench.self, DispatchBench.self, ChatBench.self]
    )
}

/// Prints a result line and appends it to the results file (`FUNNEL_BENCH_RESULTS`).
func report(_ line: String) {
    print(line)
    if let path = ProcessInfo.processInfo.environment["FUNNEL_BENCH_RESULTS"], let handle = FileHandle(forWritingAtPath: path) {
        handle.seekToEndOfFile()
        handle.write(Data((line + "\n").utf8))
        handle.closeFile()
    }
}

func format(_ value: Double) -> String { String(format: "%.0f", value) }
