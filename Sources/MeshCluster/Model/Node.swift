import Foundation

public enum NodeRole: String, Codable, Sendable, CaseIterable { case manager, worker }
public enum NodeAvailability: String, Codable, Sendable, CaseIterable { case active, pause, drain }
/// `disconnected` is Docker's state for a manager-side view of a node that lost its session but is not yet down.
public enum NodeState: String, Codable, Sendable, CaseIterable { case unknown, down, ready, disconnected }

/// A cluster member as the manager stores it (Docker's `Node`).
public struct ClusterNode: Codable, Sendable, Equatable, Identifiable {
    public var id: String
    public var version: UInt64
    public var createdAt: Date
    public var updatedAt: Date
    // Spec: what the operator sets.
    public var role: NodeRole
    public var availability: NodeAvailability
    public var labels: [String: String]
    // Description and status: what the node reports.
    public var hostname: String
    public var state: NodeState
    public var stateMessage: String
    /// The node's advertise address (underlay IP) without port.
    public var addr: String
    /// `ip:2377` for managers; nil for workers.
    public var managerAddr: String?
    public var leader: Bool
    /// What the node reports about itself (`Description` in Docker's `Node`).
    public var description: NodeDescription
    /// The node's own addresses on overlay networks (its ingress/load-balancer endpoints), like Docker's
    /// `Node.Attachments`; kept here so the allocator can rebuild them.
    public var attachments: [NetworkAttachment]
    /// What the node last reported of its certificates (its trust root, its certificate's issuer):
    /// nil until it has (Docker's `Description.TLSInfo`).
    public var tlsInfo: TLSInfo?

    public init(
        id: String, hostname: String, role: NodeRole = .worker, availability: NodeAvailability = .active,
        state: NodeState = .unknown, addr: String = "", labels: [String: String] = [:],
        managerAddr: String? = nil, leader: Bool = false, now: Date = Date(timeIntervalSince1970: 0)
    ) {
        self.id = id
        self.version = 0
        self.createdAt = now
        self.updatedAt = now
        self.role = role
        self.availability = availability
        self.labels = labels
        self.hostname = hostname
        self.state = state
        self.stateMessage = ""
        self.addr = addr
        self.managerAddr = managerAddr
        self.leader = leader
        self.attachments = []
        self.description = NodeDescription()
    }

    /// New tasks may be placed here.
    public var acceptsNewTasks: Bool { state == .ready && availability == .active }
    /// Tasks already here keep running (pause keeps them; drain and down do not).
    public var keepsTasks: Bool { state != .down && availability != .drain }
}

/// A node's self-description: platform, resources and engine version (`node ls` ENGINE VERSION).
public struct NodeDescription: Codable, Sendable, Equatable {
    public var os: String
    public var architecture: String
    public var nanoCPUs: Int64
    public var memoryBytes: Int64
    public var engineVersion: String
    public init(
        os: String = "linux", architecture: String = "x86_64", nanoCPUs: Int64 = 0, memoryBytes: Int64 = 0,
        engineVersion: String = ""
    ) {
        self.os = os
        self.architecture = architecture
        self.nanoCPUs = nanoCPUs
        self.memoryBytes = memoryBytes
        self.engineVersion = engineVersion
    }
}
