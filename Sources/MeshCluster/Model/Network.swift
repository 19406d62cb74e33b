import Foundation
import MeshValues

/// A swarm-scoped overlay network (Docker's `Network` with driver `overlay`).
public struct ClusterNetwork: Codable, Sendable, Equatable, Identifiable {
    public var id: String
    public var version: UInt64
    public var createdAt: Date
    public var updatedAt: Date
    public var name: String
    public var driver: String
    public var vni: UInt32
    public var subnet: IPPrefix
    public var gateway: IPAddress
    public var attachable: Bool
    public var ingress: Bool
    public var `internal`: Bool
    public var labels: [String: String]
    /// Driver options as given (`encrypted`...), kept for inspect.
    public var options: [String: String]
    /// `--ipv6 --subnet fd00:…/64`: the network is dual stack. A task's IPv6 address is this prefix
    /// with its IPv4 address's host part in the low 32 bits (`OverlayNetwork.address6(for:)`), so it
    /// needs no allocation of its own: unique exactly when the IPv4 one is, on every manager.
    public var subnet6: IPPrefix?

    public init(
        id: String, name: String, vni: UInt32, subnet: IPPrefix, gateway: IPAddress, driver: String = "overlay",
        attachable: Bool = false, ingress: Bool = false, internal: Bool = false,
        labels: [String: String] = [:], options: [String: String] = [:], now: Date = Date(timeIntervalSince1970: 0)
    ) {
        self.id = id
        self.version = 0
        self.createdAt = now
        self.updatedAt = now
        self.name = name
        self.driver = driver
        self.vni = vni
        self.subnet = subnet
        self.gateway = gateway
        self.attachable = attachable
        self.ingress = ingress
        self.internal = `internal`
        self.labels = labels
        self.options = options
    }
}

extension ClusterNetwork {
    /// Docker's overlay option: present (any value, `--opt encrypted` sends "") means IPsec ESP
    /// between nodes for this network's VXLAN, as dockerd reads it.
    public static let encryptedOption = "encrypted"
    public var encrypted: Bool { options[Self.encryptedOption] != nil }
}
