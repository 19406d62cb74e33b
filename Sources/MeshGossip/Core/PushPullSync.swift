/// Full-state exchange over TCP: the path that repairs whatever gossip missed (lost packets,
/// spent retransmit budgets, partitions, restarts).
extension GossipNode {
    /// Networks `peer` carries as far as we know; all of ours when we do not know the peer yet.
    func networks(of peer: String?) -> Set<String> {
        guard let peer, let nets = networkEvents[peer] else { return networks }
        return Set(nets.values.filter(\.joined).map(\.network))
    }

    func fullState(isReply: Bool, isJoin: Bool = false, forNetworks wanted: Set<String>, to peer: String?) -> PushPull {
        var records: [MemberRecord] = []
        records.reserveCapacity(members.count)
        for m in members.values {
            records.append(MemberRecord(node: m.name, address: m.address, incarnation: m.incarnation, state: m.state))
        }
        var events: [NetworkEvent] = []
        for byNet in networkEvents.values { events.append(contentsOf: byNet.values) }
        var entries: [TableEvent] = []
        let shared = networks.intersection(peer == nil ? wanted : wanted.union(networks(of: peer)))
        for net in shared {
            for k in store.keys(network: net) {
                guard let e = store[k] else { continue }
                entries.append(
                    TableEvent(
                        ltime: e.ltime, deleted: e.deleted, owner: e.owner, network: k.network,
                        table: k.table, key: k.key, value: e.value))
            }
        }
        return PushPull(
            isReply: isReply, isJoin: isJoin, sender: name, ltime: clock, senderNetworks: Array(networks).sorted(),
            members: records, networkEvents: events, entries: entries)
    }

    mutating func mergeRemoteState(_ p: PushPull, at now: Duration) {
        clock = max(clock, p.ltime)
        for r in p.members {
            switch r.state {
            case .alive:
                handleAlive(AliveMessage(incarnation: r.incarnation, node: r.node, address: r.address), at: now)
            case .suspect, .dead:
                // As memberlist does: someone else's "dead" is only a suspicion here, so one node's
                // mistake cannot kill a member cluster-wide; our own timer decides.
                if r.node == name || members[r.node] != nil {
                    handleSuspect(AccusationMessage(incarnation: r.incarnation, node: r.node, from: p.sender), at: now)
                } else if r.state == .dead {
                    // Remember it (as dead) so reconnect attempts can find it after a partition.
                    members[r.node] = Member(name: r.node, address: r.address, incarnation: r.incarnation, state: .dead, since: now)
                    memberNames.insert(r.node)
                }
            case .left:
                handleDead(AccusationMessage(incarnation: r.incarnation, node: r.node, from: r.node), at: now)
            }
        }
        for e in p.networkEvents { applyNetworkEvent(e, at: now) }
        for t in p.entries { applyRemoteEntry(t, rebroadcast: false, at: now) }
    }

    mutating func pushPullWithRandomPeer(at now: Duration) {
        guard !leaving, let peer = liveNames.sample(1, using: &rng, where: { [name] n in n != name }).first, let m = members[peer] else {
            return
        }
        sendStream(to: m.address, .pushPull(fullState(isReply: false, forNetworks: networks, to: peer)))
    }

    /// NetworkDB's periodic rejoin: try one dead member, which heals a partition that outlasted
    /// gossip-to-the-dead (memberlist#311).
    mutating func reconnectToDead(at now: Duration) {
        guard !leaving else { return }
        let dead = memberNames.sample(1, using: &rng) { [members] n in members[n]?.state == .dead }
        guard let d = dead.first, let m = members[d] else { return }
        sendStream(to: m.address, .pushPull(fullState(isReply: false, forNetworks: networks, to: d)))
    }
}
