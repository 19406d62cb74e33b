/// Sending: compound packets filled up to the packet size with piggybacked broadcasts, TCP for
/// anything that does not fit, and the periodic gossip rounds.
extension GossipNode {
    /// Largest encoded message that still fits a packet on its own.
    var maxMessageInPacket: Int { config.packetSize - envelope.overhead - Compound.overhead(parts: 1) }

    var retransmitLimit: Int { Lifeguard.retransmitLimit(mult: config.retransmitMult, nodes: liveCount) }

    mutating func enqueueMembership(_ m: Message, about node: String) {
        let bytes = MessageCodec.encode(m)
        memberQueue.enqueue(subject: node, bytes: bytes)
    }

    /// Table events travel only among the members of their network.
    mutating func enqueueTable(_ t: TableEvent) {
        let bytes = MessageCodec.encode(.table(t))
        if bytes.count > maxMessageInPacket {
            // Never truncated: too big for UDP, so it goes whole over TCP to `gossipNodes` peers,
            // each of which does the same once; push/pull backs this up.
            let peers =
                networkNodes[t.network]?.sample(config.gossipNodes, using: &rng) { [name, members] n in
                    n != name && (members[n]?.state.isLive ?? false)
                } ?? []
            for p in peers { if let m = members[p] { sendStreamBytes(to: m.address, bytes) } }
            return
        }
        networkQueues[t.network, default: BroadcastQueue()].enqueue(subject: "\(t.table)\u{0}\(t.key)", bytes: bytes)
    }

    /// Sends `messages` in one datagram, filling the rest with membership broadcasts.
    mutating func sendPacket(to: PeerAddress, _ messages: [Message], piggyback: Bool = true) {
        var parts = messages.map { MessageCodec.encode($0) }
        if piggyback && !memberQueue.isEmpty {
            let used = envelope.overhead + Compound.overhead(parts: parts.count) + parts.reduce(0) { $0 + $1.count }
            parts += memberQueue.take(
                budget: config.packetSize - used, perItem: 2, limit: retransmitLimit,
                maxItems: Compound.maxParts - parts.count)
        }
        transmit(to: to, parts)
    }

    private mutating func transmit(to: PeerAddress, _ parts: [[UInt8]]) {
        guard !parts.isEmpty else { return }
        let bytes = envelope.seal(Compound.encode(parts))
        stats.packetsSent += 1
        stats.bytesSent += bytes.count
        outbox.append(.packet(to: to, bytes: bytes))
    }

    mutating func sendStream(to: PeerAddress, _ m: Message) {
        sendStreamBytes(to: to, MessageCodec.encode(m))
    }

    private mutating func sendStreamBytes(to: PeerAddress, _ encoded: [UInt8]) {
        let bytes = envelope.seal(encoded)
        stats.streamsSent += 1
        stats.streamBytesSent += bytes.count
        outbox.append(.stream(to: to, bytes: bytes))
    }

    /// One gossip round: membership news to `gossipNodes` random members, and each network's news
    /// to `gossipNodes` random members of that network.
    mutating func gossip(at now: Duration) {
        if !memberQueue.isEmpty {
            let targets = memberNames.sample(config.gossipNodes, using: &rng) { [name, members, config] n in
                guard n != name, let m = members[n] else { return false }
                return m.state.isLive || (m.state == .dead && now - m.since < config.gossipToTheDead)
            }
            for t in targets {
                guard let m = members[t] else { continue }
                let parts = memberQueue.take(
                    budget: config.packetSize - envelope.overhead - 1, perItem: 2,
                    limit: retransmitLimit, maxItems: Compound.maxParts)
                if parts.isEmpty { break }
                transmit(to: m.address, parts)
            }
        }
        for net in networks { gossip(network: net, packetsPerPeer: 1) }
    }

    /// Sends a network's queued table news to `gossipNodes` of its members now, as a gossip round
    /// would, instead of up to one interval later: a node's own writes (a task starting or
    /// draining) are worth that latency. The sends count against each item's retransmissions.
    public mutating func flush(network: String) -> [GossipOutput] {
        gossip(network: network, packetsPerPeer: 4)
        return takeOutbox()
    }

    private mutating func gossip(network net: String, packetsPerPeer: Int) {
        guard var q = networkQueues[net], !q.isEmpty, let nodes = networkNodes[net] else { return }
        let limit = Lifeguard.retransmitLimit(mult: config.retransmitMult, nodes: nodes.count)
        let targets = nodes.sample(config.gossipNodes, using: &rng) { [name, members] n in
            n != name && (members[n]?.state.isLive ?? false)
        }
        let budget = config.packetSize - envelope.overhead - 1
        // Enough packets for the whole queue, so that a second one to a peer never repeats the first.
        let packets = min(packetsPerPeer, max(1, (q.byteCount(perItem: 2) + budget - 1) / budget))
        peers: for t in targets {
            guard let m = members[t] else { continue }
            for _ in 0..<packets {
                let parts = q.take(budget: budget, perItem: 2, limit: limit, maxItems: Compound.maxParts)
                if parts.isEmpty { break peers }
                transmit(to: m.address, parts)
            }
        }
        networkQueues[net] = q
    }
}
