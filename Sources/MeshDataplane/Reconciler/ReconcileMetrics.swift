import CoreMetrics
import MeshKernel

/// What the reconciler counts, through swift-metrics (exported by `meshd daemon --metrics-addr`):
/// how long an apply takes, full or by single-object changes, and how many kernel changes it made.
struct ReconcileMetrics: Sendable {
    let full = Timer(label: "meshd_dataplane_apply_seconds", dimensions: [("kind", "full")])
    let incremental = Timer(label: "meshd_dataplane_apply_seconds", dimensions: [("kind", "changes")])
    let changes = Recorder(label: "meshd_dataplane_apply_changes")
    let failures = Counter(label: "meshd_dataplane_apply_failures_total")

    func record(full isFull: Bool, since start: ContinuousClock.Instant, report: ChangeReport?) {
        (isFull ? full : incremental).recordNanoseconds((ContinuousClock.now - start).nanoseconds)
        if let report { changes.record(report.changes.count) } else { failures.increment() }
    }
}
