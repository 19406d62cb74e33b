/// Which nodes carry which network. Everyone learns every join and leave (they are small), but
/// only members of a network hold its entries and receive its table gossip.
extension GossipNode {
    /// Start carrying `network`: announce it and pull its entries from a member right away.
    public mutating func joinNetwork(_ network: String, at now: Duration) -> [GossipOutput] {
        guard !networks.contains(network) else { return [] }
        networks.insert(network)
        clock += 1
        applyNetworkEvent(NetworkEvent(ltime: clock, node: name, network: network, joined: true), at: now)
        if let peer = networkNodes[network]?.sample(
            1, using: &rng,
            where: { [name, members] n in
                n != name && (members[n]?.state.isLive ?? false)
            }
        ).first, let m = members[peer] {
            sendStream(to: m.address, .pushPull(fullState(isReply: false, forNetworks: networks, to: peer)))
        }
        return takeOutbox()
    }

    /// Stop carrying `network`: announce it and forget its entries (watchers see them go).
    public mutating func leaveNetwork(_ network: String, at now: Duration) -> [GossipOutput] {
        guard networks.contains(network) else { return [] }
        networks.remove(network)
        clock += 1
        applyNetworkEvent(NetworkEvent(ltime: clock, node: name, network: network, joined: false), at: now)
        for k in store.keys(network: network) {
            if let e = store[k], isVisible(e) {
                emit(.table(TableChange(kind: .delete, network: network, table: k.table, key: k.key, owner: e.owner, value: e.value)))
            }
        }
        store.dropNetwork(network)
        networkQueues[network] = nil
        return takeOutbox()
    }

    /// Nodes known to carry `network`.
    public func nodes(on network: String) -> [String] { networkNodes[network]?.elements ?? [] }

    mutating func applyNetworkEvent(_ e: NetworkEvent, at now: Duration) {
        if let old = networkEvents[e.node]?[e.network], old.ltime >= e.ltime { return }
        clock = max(clock, e.ltime)
        if e.node == name && e.joined != networks.contains(e.network) {
            // A record of ours from a previous life that says otherwise: restate the truth, later.
            clock += 1
            record(NetworkEvent(ltime: clock, node: name, network: e.network, joined: networks.contains(e.network)))
            return
        }
        record(e)
        // The owner left the network: its entries there are gone (as tombstones, so they stay gone).
        if !e.joined && e.node != name && networks.contains(e.network) {
            for k in store.keys(owner: e.node) where k.network == e.network {
                guard let old = store[k], !old.deleted else { continue }
                if isVisible(old) {
                    emit(
                        .table(TableChange(kind: .delete, network: k.network, table: k.table, key: k.key, owner: e.node, value: old.value)))
                }
                var t = old
                t.deleted = true
                t.value = []
                t.reapAt = now + config.tombstoneReap
                store.put(k, t)
            }
        }
    }

    private mutating func record(_ e: NetworkEvent) {
        networkEvents[e.node, default: [:]][e.network] = e
        if e.joined { networkNodes[e.network, default: IndexedSet()].insert(e.node) } else { networkNodes[e.network]?.remove(e.node) }
        enqueueMembership(.network(e), about: "\(e.node)\u{0}\(e.network)")
    }
}
