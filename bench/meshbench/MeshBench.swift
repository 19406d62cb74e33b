import ArgumentParser
import Foundation
import MeshKernel
import MeshTestbed

@main
struct MeshBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshbench",
        abstract: "meshd benchmarks: each runs meshd and its comparison side by side and prints the ratio.",
        subcommands: [
            NeighFDB.self, NFTLoad.self, IPVSLoad.self, GossipBench.self, DNSBench.self, VIPBench.self, ApplyBench.self, AgentBench.self,
            ConvergeBench.self,
        ]
    )
}

/// Shared by every benchmark: rounds, quick mode, a results file.
struct BenchOptions: ParsableArguments {
    @Option(help: "Measured rounds per side (sides alternate every round so drift hits both).")
    var rounds = 5
    @Flag(help: "Smoke mode for CI: small sizes, one round; checks the benchmark runs, not the numbers.")
    var quick = false
    @Option(help: "Write results as JSON here as well.")
    var json: String?
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}
