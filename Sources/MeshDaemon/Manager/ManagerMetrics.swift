import CoreMetrics
import MeshCluster
import MeshValues

/// What the manager counts, through swift-metrics (exported by `--metrics-addr`). Task counts come
/// from the snapshot each pass reads anyway to build assignments: a scrape reads nothing.
struct ManagerMetrics: Sendable {
    /// One control-loop pass: liveness, orchestration and scheduling, in one store transaction.
    let pass = Timer(label: "meshd_manager_pass_seconds")
    let passFailures = Counter(label: "meshd_manager_pass_failures_total")
    /// The read of the store that assignments are built from.
    let storeRead = Timer(label: "meshd_manager_store_read_seconds")
    let assignmentsSent = Counter(label: "meshd_manager_assignments_sent_total")
    let sessions = Gauge(label: "meshd_manager_node_sessions")
    let gossipKeyRotations = Counter(label: "meshd_manager_gossip_key_rotations_total")
    /// Node certificates renewed over 2377 (joins not counted).
    let certificatesIssued = Counter(label: "meshd_manager_certificate_renewals_total")
    /// Root CA rotations this manager finished (`swarm ca --rotate`).
    let rootRotations = Counter(label: "meshd_manager_root_rotations_total")
    private let tasks: [TaskState: Gauge]

    init() {
        var t: [TaskState: Gauge] = [:]
        for s in TaskState.allCases { t[s] = Gauge(label: "meshd_manager_tasks", dimensions: [("state", s.rawValue)]) }
        tasks = t
    }

    /// Tasks by observed state, every state present (a state with none is 0, not a stale value).
    func count(_ snapshot: ClusterSnapshot) {
        var n: [TaskState: Int] = [:]
        for t in snapshot.tasks { n[t.status.state, default: 0] += 1 }
        for (s, g) in tasks { g.record(n[s] ?? 0) }
    }
}
