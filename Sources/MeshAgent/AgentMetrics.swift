import CoreMetrics
import MeshKernel

/// What the agent counts, through swift-metrics (exported by `meshd daemon --metrics-addr`).
struct AgentMetrics: Sendable {
    /// From the assignment that names a task to the task taking weight in its balancers.
    let taskStart = Timer(label: "meshd_task_start_seconds")
    let tasksRejected = Counter(label: "meshd_tasks_rejected_total")
    /// Assignments applied, and remote-task changes applied on their own (the gossip path).
    let assignments = Counter(label: "meshd_agent_assignments_total")
    let remoteChanges = Counter(label: "meshd_agent_remote_changes_total")
    /// Health probes run, and the times one changed whether a task is served.
    let healthProbes = Counter(label: "meshd_health_probes_total")
    let healthChanges = Counter(label: "meshd_health_serving_changes_total")

    func started(_ count: Int, after d: Duration) {
        for _ in 0..<count { taskStart.recordNanoseconds(d.nanoseconds) }
    }
}
