import Foundation
import MeshControl
import MeshGossip
import MeshKernel

/// Tasks' endpoints over gossip, as libnetwork's endpoint table does: each node writes its own
/// tasks into the table of every network they are on, and reads everyone else's. Entries of a
/// node that dies or leaves vanish with it, so its backends leave every load balancer within the
/// failure-detection time, without waiting for the manager.
public actor EndpointDirectory {
    /// One task on one network, as published.
    struct Record: Codable, Equatable {
        var id: String
        var name: String
        var service: String
        var node: String
        var nodeAddress: IPAddress
        var serving: Bool
        var address: IPAddress
    }

    public static let table = "endpoints"
    public let gossip: GossipAgent
    public let nodeID: String
    public let nodeAddress: IPAddress
    private var published: [String: [String: [UInt8]]] = [:]  // network → task id → the value we wrote
    private var joined: Set<String> = []
    private var remote: [String: [String: Record]] = [:]  // network → task id → record
    private var watchers: [String: Task<Void, Never>] = [:]
    private var deltaSubscribers: [UUID: AsyncStream<RemoteDelta>.Continuation] = [:]
    /// The networks each remote task has records on, so one change rebuilds one task.
    private var taskNetworks: [String: Set<String>] = [:]

    /// Remote tasks that changed, by id: the task as it is now, or nil when it is gone.
    public typealias RemoteDelta = [String: NodeAssignment.RemoteTask?]

    public init(gossip: GossipAgent, nodeID: String, nodeAddress: IPAddress) {
        self.gossip = gossip
        self.nodeID = nodeID
        self.nodeAddress = nodeAddress
    }

    /// Makes the published entries match `tasks` (only what differs is written). `serving`:
    /// false for a task being drained.
    public func publish(_ tasks: [NodeAssignment.LocalTask], draining: Set<String> = []) async throws {
        var want: [String: [String: Record]] = [:]
        for t in tasks where t.desired == .running {
            for at in t.attachments {
                want[at.network, default: [:]][t.id] = Record(
                    id: t.id, name: t.name, service: t.service, node: nodeID,
                    nodeAddress: nodeAddress, serving: !draining.contains(t.id),
                    address: at.address)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for network in Set(want.keys).union(published.keys).sorted() {
            try await watch(network)
            var wrote = false
            for (id, r) in want[network] ?? [:] {
                let bytes = Array(try encoder.encode(r))
                if published[network]?[id] != bytes {
                    try await gossip.set(network: network, table: Self.table, key: id, value: bytes)
                    published[network, default: [:]][id] = bytes
                    wrote = true
                }
            }
            for id in (published[network] ?? [:]).keys where want[network]?[id] == nil {
                try await gossip.delete(network: network, table: Self.table, key: id)
                published[network]?[id] = nil
                wrote = true
            }
            // Other nodes' balancers wait on this news: out now, not at the next gossip round.
            if wrote { await gossip.flush(network: network) }
        }
    }

    /// Joins `network`'s table and follows other nodes' entries in it.
    public func watch(_ network: String) async throws {
        guard joined.insert(network).inserted else { return }
        await gossip.joinNetwork(network)
        let changes = await gossip.watch(network: network)
        var seen: Set<String> = []
        for (k, e) in await gossip.entries(network: network) where k.table == Self.table && e.owner != nodeID {
            if let r = try? JSONDecoder().decode(Record.self, from: Data(e.value)) {
                remote[network, default: [:]][k.key] = r
                taskNetworks[k.key, default: []].insert(network)
                seen.insert(k.key)
            }
        }
        watchers[network] = Task { [weak self] in
            for await c in changes where c.table == Self.table {
                await self?.apply(c)
            }
        }
        notify(seen)
    }

    private func apply(_ c: TableChange) {
        guard c.owner != nodeID else { return }
        switch c.kind {
        case .create, .update:
            // A malformed entry from a peer is ignored, never fatal.
            guard let r = try? JSONDecoder().decode(Record.self, from: Data(c.value)), r.id == c.key else { return }
            remote[c.network, default: [:]][c.key] = r
            taskNetworks[c.key, default: []].insert(c.network)
        case .delete:
            remote[c.network]?[c.key] = nil
            taskNetworks[c.key]?.remove(c.network)
            if taskNetworks[c.key]?.isEmpty == true { taskNetworks[c.key] = nil }
        }
        notify([c.key])
    }

    /// One remote task with all its attachments, from its records (nil when it has none).
    private func remoteTask(_ id: String) -> NodeAssignment.RemoteTask? {
        var out: NodeAssignment.RemoteTask?
        for network in (taskNetworks[id] ?? []).sorted() {
            guard let r = remote[network]?[id] else { continue }
            var t =
                out
                ?? NodeAssignment.RemoteTask(
                    id: r.id, name: r.name, service: r.service, nodeID: r.node,
                    nodeAddress: r.nodeAddress, serving: r.serving, attachments: [])
            t.attachments.append(.init(network: network, address: r.address))
            t.serving = t.serving && r.serving
            out = t
        }
        return out
    }

    /// Other nodes' tasks, one per task with all its attachments.
    public func remoteTasks() -> [NodeAssignment.RemoteTask] { taskNetworks.keys.sorted().compactMap(remoteTask) }

    /// Changes only: first every task known now, then each task again whenever it changes. Nothing
    /// is dropped (a delta cannot be coalesced away like a full list), and a change costs its task.
    public func changes() -> AsyncStream<RemoteDelta> {
        let (stream, continuation) = AsyncStream.makeStream(of: RemoteDelta.self)
        let id = UUID()
        deltaSubscribers[id] = continuation
        var all: RemoteDelta = [:]
        for t in taskNetworks.keys { all[t] = .some(remoteTask(t)) }
        continuation.yield(all)
        continuation.onTermination = { [weak self] _ in Task { await self?.unsubscribe(id) } }
        return stream
    }

    private func unsubscribe(_ id: UUID) { deltaSubscribers[id] = nil }
    private func notify(_ ids: Set<String>) {
        if !deltaSubscribers.isEmpty, !ids.isEmpty {
            var delta: RemoteDelta = [:]
            for id in ids { delta[id] = .some(remoteTask(id)) }
            for c in deltaSubscribers.values { c.yield(delta) }
        }
    }

    public func stop() {
        for w in watchers.values { w.cancel() }
        watchers = [:]
        for c in deltaSubscribers.values { c.finish() }
        deltaSubscribers = [:]
    }
}
