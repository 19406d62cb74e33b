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
            NeighFDB.self, NFTLoad.self, IPVSLoad.self, GossipBench.self, DNSBench.self, VIPBench.self, OverlayBench.self, ApplyBench.self,
            AgentBench.self, ScaleBench.self,
            ConvergeBench.self, TaskStartBench.self, FailoverBench.self, ManagerBench.self, ESPBench.self,
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

/// The nearest-rank percentile (`q` in 0…1) of `xs`; 0 for none.
func percentile(_ xs: [Double], _ q: Double) -> Double {
    let s = xs.sorted()
    return s.isEmpty ? 0 : s[min(s.count - 1, Int((Double(s.count) * q).rounded(.up)) - 1)]
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// What `--json FILE` writes, read by bench/report.py: `benchmark`, `quick`, the benchmark's own
/// figures (its medians and ratios, and the samples they came from where the report plots them),
/// and `metrics`, the rows of the report's table. A metric's value is in the unit it names; its
/// goal, if it has one, is an operator ("<=", "<", ">=", ">", "==") and a limit in that unit, and
/// the report (not the benchmark) says whether the value meets it.
struct BenchResults {
    let benchmark: String
    var fields: [String: Any]
    var metrics: [[String: Any]] = []

    init(_ benchmark: String, quick: Bool, _ fields: [String: Any] = [:]) {
        self.benchmark = benchmark
        self.fields = fields.merging(["benchmark": benchmark, "quick": quick]) { _, new in new }
    }

    subscript(key: String) -> Any? {
        get { fields[key] }
        set { fields[key] = newValue }
    }

    /// A table row. A value that is not finite (a ratio over a zero time) is written as null.
    mutating func metric(_ name: String, _ value: Double, _ unit: String, goal: String? = nil, _ limit: Double? = nil) {
        var m: [String: Any] = ["name": name, "value": value.isFinite ? value : NSNull(), "unit": unit]
        if let goal, let limit {
            m["goal"] = goal
            m["limit"] = limit
        }
        metrics.append(m)
    }

    /// Writes the file when `path` is set (the benchmark's `--json`).
    func write(to path: String?) throws {
        guard let path else { return }
        var out = fields
        out["metrics"] = metrics
        try JSONSerialization.data(withJSONObject: Self.finite(out), options: [.prettyPrinted, .sortedKeys])
            .write(to: URL(fileURLWithPath: path))
    }

    /// JSON has no NaN or infinity: such numbers (and in arrays of samples) become null.
    static func finite(_ v: Any) -> Any {
        switch v {
        case let d as Double: return d.isFinite ? d : NSNull()
        case let a as [Any]: return a.map(finite)
        case let o as [String: Any]: return o.mapValues(finite)
        default: return v
        }
    }
}
