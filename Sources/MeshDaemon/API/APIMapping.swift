import MeshAPI
import MeshCluster

/// Pure conversions between the manager's model (MeshCluster) and the Docker Engine API's (MeshAPI).
/// Both directions live here so that what the CLI sends and what it reads back stay symmetric: a spec
/// that goes API → cluster → API → cluster must come out equal, or a no-op `service update` would
/// replace every task.
public enum APIMapping {
    /// meshd's orchestrator plans every replica of a service in one pass; a count beyond this is a typo
    /// (or a hostile request) that would stall the control loop rather than a real deployment. The rule
    /// is the API edge's (`ServiceSpecNormalizer`).
    public static let maxReplicas: UInt64 = ServiceSpecNormalizer.maxReplicas

    /// swarmkit's value when `UpdateConfig.Monitor` is absent or zero (`api/defaults/service.go`).
    static let defaultMonitor: Int64 = 5_000_000_000
    /// swarmkit's restart delay when `RestartPolicy.Delay` is absent.
    static let defaultRestartDelay: Int64 = 5_000_000_000

    /// dockerd passes swarmkit's gRPC failures through with this prefix; scripts match on it.
    static func rpc(_ code: String, _ message: String) -> String { "rpc error: code = \(code) desc = \(message)" }
}
