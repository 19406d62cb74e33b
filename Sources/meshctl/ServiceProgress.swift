import Foundation
import MeshAPI

/// docker's convergence loop (`cli/command/service/progress`): every 200 ms read the service, its
/// up-to-date tasks and the nodes; count a slot (or node, for global services) as running when its
/// task runs on a node that is not down; once all run, wait the update monitor period and check again.
struct ServiceProgress {
    let client: EngineClient
    let ref: String
    let quiet: Bool
    var timeout: TimeInterval = 600

    static let terminal: Set<String> = ["complete", "shutdown", "failed", "rejected", "remove", "orphaned"]

    func say(_ s: String) { if !quiet { print(s) } }

    func wait() async throws {
        let start = Date()
        var last = ""
        var convergedSince: Date?
        var announcedRollback = false
        while Date().timeIntervalSince(start) < timeout {
            let svc = try await client.get(Service.self, apiPath("services", ref), query: [("insertDefaults", "false")])
            let filters = EngineClient.filters(["_up-to-date": ["true"], "service": [svc.ID]])
            let tasks = try await client.get([SwarmTask].self, "/tasks", query: [("filters", filters)])
            let nodes = try await client.get([Node].self, "/nodes")
            let active = Set(nodes.filter { $0.Status.State != "down" }.map(\.ID))

            switch svc.UpdateStatus?.State {
            case "paused": throw EngineClientError.daemon(status: 0, message: "service update paused: \(svc.UpdateStatus?.Message ?? "")")
            case "rollback_paused":
                throw EngineClientError.daemon(status: 0, message: "service rollback paused: \(svc.UpdateStatus?.Message ?? "")")
            case "rollback_started" where !announcedRollback:
                say("rollback: \(svc.UpdateStatus?.Message ?? "")")
                announcedRollback = true
            default: break
            }

            let (running, desired, lines) = Self.count(svc, tasks: tasks, activeNodes: active)
            let header =
                desired == 0 && svc.Spec.Mode?.Global != nil
                ? "overall progress: waiting for new tasks"
                : "overall progress: \(running) out of \(desired) tasks"
            let text = ([header] + (desired <= 20 ? lines : [])).joined(separator: "\n")
            if text != last {
                say(text)
                last = text
            }
            if running == desired && (desired > 0 || svc.Spec.Mode?.Replicated != nil) {
                let monitor = Double(svc.Spec.UpdateConfig?.Monitor ?? .seconds(5)) / 1e9
                if let since = convergedSince {
                    if Date().timeIntervalSince(since) >= monitor {
                        say("verify: Service \(ref) converged")
                        return
                    }
                } else {
                    convergedSince = Date()
                    say("verify: Waiting \(Int(monitor.rounded(.up))) seconds to verify that tasks are stable...")
                }
            } else {
                convergedSince = nil
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw EngineClientError.daemon(status: 0, message: "service \(ref) did not converge within \(Int(timeout)) seconds")
    }

    /// Running and desired counts and the per-slot lines `i/N: state`.
    static func count(_ svc: Service, tasks: [SwarmTask], activeNodes: Set<String>) -> (Int, Int, [String]) {
        let live = tasks.filter { activeNodes.contains($0.NodeID) || $0.NodeID.isEmpty }
        let order = SwarmTask.states
        func rank(_ s: String) -> Int { order.firstIndex(of: s) ?? Int.max }
        func better(_ a: SwarmTask, _ b: SwarmTask) -> Bool {
            rank(a.DesiredState) != rank(b.DesiredState)
                ? rank(a.DesiredState) < rank(b.DesiredState) : rank(a.Status.State) < rank(b.Status.State)
        }
        let isGlobal = svc.Spec.Mode?.Replicated == nil
        var best: [String: SwarmTask] = [:]
        for t in live where !(isGlobal ? false : t.Slot == 0) {
            let key = isGlobal ? t.NodeID : String(t.Slot)
            if let cur = best[key], !better(t, cur) { continue }
            best[key] = t
        }
        let desired = isGlobal ? best.count : Int(svc.Spec.Mode?.Replicated?.Replicas ?? 0)
        var running = 0
        var lines: [String] = []
        let keys = isGlobal ? best.keys.sorted() : (desired == 0 ? [] : (1...desired).map(String.init))
        for key in keys {
            guard let t = best[key] else {
                lines.append("\(key)/\(desired): ")
                continue
            }
            let isRunning = t.Status.State == "running" && !terminal.contains(t.DesiredState)
            if isRunning { running += 1 }
            let state = (t.Status.Err ?? "").isEmpty ? t.Status.State : String(t.Status.Err!.prefix(75))
            lines.append(isGlobal ? "\(t.NodeID.prefix(12)): \(state)" : "\(key)/\(desired): \(state)")
        }
        return (running, desired, lines)
    }
}
