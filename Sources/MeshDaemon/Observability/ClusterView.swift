import Foundation
import MeshAPI
import MeshControl

/// What the cluster page draws: nodes as columns with their tasks, each service's colour and
/// published ports, each node's traffic as that node last reported it. Built from the same
/// answers `node ls`, `service ls` and `service ps` give, so the page never disagrees with the CLI.
public struct ClusterView: Codable, Sendable, Equatable {
    public struct NodeView: Codable, Sendable, Equatable {
        public var id: String
        public var hostname: String
        public var role: String
        public var leader: Bool
        public var state: String
        public var availability: String
        public var address: String
        /// Connections and bytes through this node's VIPs and published ports, by service name;
        /// nil until the node has reported.
        public var traffic: [String: NodeTraffic.Count]?
    }
    public struct ServiceView: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var mode: String
        public var replicas: Int?
        /// `8080:8000/tcp` (published:target/protocol), `host` mode marked.
        public var ports: [String]
        /// A hue for the service, from its name: the same on every page and every reload.
        public var hue: Int
    }
    public struct TaskView: Codable, Sendable, Equatable {
        public var id: String
        public var service: String
        public var slot: Int
        public var node: String
        public var state: String
    }
    public var nodes: [NodeView]
    public var services: [ServiceView]
    /// Tasks meant to run (desired state running), in any observed state.
    public var tasks: [TaskView]

    /// FNV-1a of the name, folded to a hue: stable across processes (Swift's hashValue is seeded).
    static func hue(_ name: String) -> Int {
        var h: UInt32 = 2_166_136_261
        for b in name.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return Int(h % 360)
    }

    static func port(_ p: PortConfig) -> String {
        let proto = p.Protocol ?? "tcp"
        let published = p.PublishedPort.map { "\($0):" } ?? ""
        return "\(published)\(p.TargetPort)/\(proto)" + (p.PublishMode == "host" ? " (host)" : "")
    }
}

extension Daemon {
    /// The page's data; `.notInSwarm` / `.notAManager` when this daemon cannot answer.
    public func clusterView() async throws(EngineError) -> ClusterView {
        let nodes = try await listNodes(NodeFilter())
        let services = try await listServices(ServiceFilter(), status: false)
        let tasks = try await listTasks(TaskFilter(FilterArgs(["desired-state": ["running"]])))
        let traffic = await managerTraffic()
        let names = Dictionary(services.map { ($0.ID, $0.Spec.Name ?? $0.ID) }, uniquingKeysWith: { a, _ in a })
        return ClusterView(
            nodes: nodes.sorted { ($0.Description.Hostname, $0.ID) < ($1.Description.Hostname, $1.ID) }.map { n in
                ClusterView.NodeView(
                    id: n.ID, hostname: n.Description.Hostname, role: n.Spec.Role, leader: n.ManagerStatus?.Leader ?? false,
                    state: n.Status.State, availability: n.Spec.Availability, address: n.Status.Addr,
                    traffic: traffic[n.ID]?.services)
            },
            services: services.sorted { ($0.Spec.Name ?? "") < ($1.Spec.Name ?? "") }.map { s in
                let name = s.Spec.Name ?? s.ID
                return ClusterView.ServiceView(
                    id: s.ID, name: name, mode: s.Spec.Mode?.Global != nil ? "global" : "replicated",
                    replicas: s.Spec.Mode?.Replicated?.Replicas.map { Int($0) },
                    ports: (s.Endpoint?.Ports ?? []).map(ClusterView.port), hue: ClusterView.hue(name))
            },
            tasks: tasks.sorted { ($0.ServiceID, $0.Slot, $0.ID) < ($1.ServiceID, $1.Slot, $1.ID) }.map { t in
                ClusterView.TaskView(
                    id: t.ID, service: names[t.ServiceID] ?? t.ServiceID, slot: t.Slot, node: t.NodeID, state: t.Status.State)
            })
    }
}
