/// A member as this node sees it.
public struct Member: Sendable, Equatable {
    public var name: String
    public var address: PeerAddress
    public var incarnation: UInt32
    public var state: MemberState
    /// When the state last changed (node-local time).
    public var since: Duration
}

/// The whole protocol as a deterministic state machine: SWIM membership with Lifeguard, and
/// NetworkDB-style per-network tables. It owns no socket and reads no clock: the driver (the
/// simulator or the NIO transport) feeds it packets, stream frames and the time, and carries out
/// the `GossipOutput`s it returns. Same inputs and seed → same outputs.
public struct GossipNode {
    public internal(set) var name: String
    public internal(set) var address: PeerAddress
    public internal(set) var config: GossipConfig
    public internal(set) var envelope: Envelope
    public internal(set) var incarnation: UInt32
    public internal(set) var stats = GossipStats()
    public internal(set) var awareness: Awareness
    public internal(set) var leaving = false

    var rng: SeededRandom
    var outbox: [GossipOutput] = []

    // Membership
    public internal(set) var members: [String: Member] = [:]
    var memberNames = IndexedSet<String>()
    var liveNames = IndexedSet<String>()
    var suspicions: [String: Suspicion] = [:]
    var memberQueue = BroadcastQueue()

    // Probing
    var probeOrder: [String] = []
    var probeIndex = 0
    var probe: ActiveProbe?
    var relays: [UInt32: Relay] = [:]
    var sequence: UInt32 = 0

    // Timers
    var nextProbeAt: Duration
    var nextGossipAt: Duration
    var nextPushPullAt: Duration
    var nextReconnectAt: Duration
    var nextReapAt: Duration
    /// Seeds to retry until someone answers (a seed may start after us).
    var pendingSeeds: [PeerAddress] = []
    var nextJoinAt: Duration = .seconds(Int64.max / 4)

    // Tables
    public internal(set) var clock: UInt64 = 0
    public internal(set) var networks: Set<String> = []
    var networkEvents: [String: [String: NetworkEvent]] = [:]
    var networkNodes: [String: IndexedSet<String>] = [:]
    var networkQueues: [String: BroadcastQueue] = [:]
    var store = TableStore()

    public init(
        name: String, address: PeerAddress, config: GossipConfig = GossipConfig(), envelope: Envelope = Envelope(),
        incarnation: UInt32 = 0, seed: UInt64, now: Duration = .zero
    ) {
        self.name = name
        self.address = address
        self.config = config
        self.envelope = envelope
        self.incarnation = incarnation
        awareness = Awareness(max: config.awarenessMax)
        rng = SeededRandom(seed: seed)
        // Stagger the timers so a thousand nodes started together do not tick in lockstep.
        func jitter(_ d: Duration, _ r: inout SeededRandom) -> Duration { d * r.unit() }
        nextProbeAt = now + jitter(config.probeInterval, &rng)
        nextGossipAt = now + jitter(config.gossipInterval, &rng)
        nextPushPullAt = now + config.pushPullInterval + jitter(config.pushPullInterval, &rng)
        nextReconnectAt = now + config.reconnectInterval + jitter(config.reconnectInterval, &rng)
        nextReapAt = now + .seconds(60)
        members[name] = Member(name: name, address: address, incarnation: incarnation, state: .alive, since: now)
        memberNames.insert(name)
        liveNames.insert(name)
        enqueueMembership(.alive(AliveMessage(incarnation: incarnation, node: name, address: address)), about: name)
    }

    /// Live members including this one (the N in every formula).
    public var liveCount: Int { liveNames.count }

    public func member(_ name: String) -> Member? { members[name] }

    mutating func takeOutbox() -> [GossipOutput] {
        defer { outbox.removeAll(keepingCapacity: true) }
        return outbox
    }

    mutating func nextSeq() -> UInt32 {
        sequence &+= 1
        return sequence
    }

    mutating func emit(_ e: GossipEvent) { outbox.append(.event(e)) }

    // MARK: driving

    /// The earliest time `tick` has work to do.
    public var nextDeadline: Duration {
        var d = Swift.min(nextGossipAt, nextPushPullAt, nextReconnectAt, nextReapAt, nextJoinAt)
        if config.probing { d = Swift.min(d, nextProbeAt) }
        if let p = probe { d = Swift.min(d, p.acked || p.indirectSent ? p.end : p.ackDeadline) }
        for r in relays.values { d = Swift.min(d, r.deadline) }
        for s in suspicions.values { d = Swift.min(d, s.deadline) }
        return d
    }

    /// Runs every timer that is due.
    public mutating func tick(at now: Duration) -> [GossipOutput] {
        if config.probing { probeTimers(at: now) }
        expireRelays(at: now)
        expireSuspicions(at: now)
        if now >= nextGossipAt {
            gossip(at: now)
            nextGossipAt = Swift.max(nextGossipAt + config.gossipInterval, now)
        }
        if now >= nextPushPullAt {
            pushPullWithRandomPeer(at: now)
            nextPushPullAt = now + Lifeguard.pushPullScale(config.pushPullInterval, nodes: liveCount)
        }
        if now >= nextReconnectAt {
            reconnectToDead(at: now)
            nextReconnectAt = now + config.reconnectInterval
        }
        if now >= nextJoinAt {
            if liveCount > 1 { pendingSeeds = [] }
            if pendingSeeds.isEmpty {
                nextJoinAt = .seconds(Int64.max / 4)
            } else {
                contactSeeds()
                nextJoinAt = now + config.probeInterval * 2
            }
        }
        if now >= nextReapAt {
            reap(at: now)
            nextReapAt = now + .seconds(60)
        }
        return takeOutbox()
    }

    /// One UDP datagram arrived.
    public mutating func receivePacket(_ bytes: [UInt8], from: PeerAddress, at now: Duration) -> [GossipOutput] {
        stats.packetsReceived += 1
        stats.bytesReceived += bytes.count
        guard let payload = open(bytes) else { return takeOutbox() }
        let messages: [Message]
        do { messages = try Compound.decode(payload, limits: config.limits) } catch {
            stats.droppedMalformed += 1
            return takeOutbox()
        }
        for m in messages { handle(m, from: from, viaStream: false, at: now) }
        return takeOutbox()
    }

    /// One TCP frame arrived (request or reply). Returns the reply frame to write back, if any.
    public mutating func receiveStream(_ bytes: [UInt8], from: PeerAddress, at now: Duration) -> (reply: [UInt8]?, outputs: [GossipOutput])
    {
        stats.streamsReceived += 1
        guard let payload = open(bytes) else { return (nil, takeOutbox()) }
        let message: Message
        do { message = try MessageCodec.decode(payload, limits: config.limits) } catch {
            stats.droppedMalformed += 1
            return (nil, takeOutbox())
        }
        var reply: Message?
        switch message {
        case let .ping(seq, target, _, _):
            if target == name { reply = .ack(seq: seq) }
        case let .pushPull(p):
            if !p.isReply { reply = .pushPull(fullState(isReply: true, forNetworks: Set(p.senderNetworks), to: nil)) }
            mergeRemoteState(p, at: now)
        default:
            handle(message, from: from, viaStream: true, at: now)
        }
        return (reply.map { envelope.seal(MessageCodec.encode($0)) }, takeOutbox())
    }

    private mutating func open(_ bytes: [UInt8]) -> [UInt8]? {
        switch envelope.open(bytes) {
        case let .success(p): return p
        case .failure(.wrongLabel): stats.droppedWrongLabel += 1
        case .failure(.undecryptable), .failure(.encryptedButNoKeys): stats.droppedUndecryptable += 1
        case .failure(.plaintextNotAllowed): stats.droppedPlaintext += 1
        case .failure(.malformed): stats.droppedMalformed += 1
        }
        return nil
    }

    mutating func handle(_ m: Message, from: PeerAddress, viaStream: Bool, at now: Duration) {
        switch m {
        case let .ping(seq, target, _, _):
            // A ping meant for a previous owner of this address is not ours to answer.
            guard target == name else { return }
            sendPacket(to: from, [.ack(seq: seq)])
        case let .indirectPing(seq, target, targetAddress, _, _, wantNack):
            relayProbe(seq: seq, target: target, targetAddress: targetAddress, requester: from, wantNack: wantNack, at: now)
        case let .ack(seq): handleAck(seq, viaStream: viaStream, at: now)
        case let .nack(seq): if probe?.seq == seq { probe?.nacks += 1 }
        case let .alive(a): handleAlive(a, at: now)
        case let .suspect(s): handleSuspect(s, from: viaStream ? nil : from, at: now)
        case let .dead(d): handleDead(d, from: viaStream ? nil : from, at: now)
        case let .network(e): applyNetworkEvent(e, at: now)
        case let .table(t): applyRemoteEntry(t, rebroadcast: true, at: now)
        case let .pushPull(p): mergeRemoteState(p, at: now)
        }
    }

    // MARK: operator actions

    /// Contacts seeds with a full-state exchange over TCP (memberlist's Join).
    /// Retried every two probe intervals until some member is known.
    public mutating func join(seeds: [PeerAddress], at now: Duration) -> [GossipOutput] {
        pendingSeeds = seeds.filter { $0 != address }
        contactSeeds()
        if !pendingSeeds.isEmpty { nextJoinAt = now + config.probeInterval * 2 }
        return takeOutbox()
    }

    private mutating func contactSeeds() {
        for s in pendingSeeds {
            sendStream(to: s, .pushPull(fullState(isReply: false, isJoin: true, forNetworks: networks, to: nil)))
        }
    }

    /// Graceful leave: tell everyone we are going so nobody has to detect it.
    public mutating func leave(at now: Duration) -> [GossipOutput] {
        guard !leaving else { return [] }
        leaving = true
        let msg = Message.dead(AccusationMessage(incarnation: incarnation, node: name, from: name))
        enqueueMembership(msg, about: name)
        // Send at once too: the process may exit before the next gossip round.
        let targets = liveNames.sample(config.gossipNodes * 2, using: &rng) { [name] n in n != name }
        for t in targets { if let m = members[t] { sendPacket(to: m.address, [msg]) } }
        return takeOutbox()
    }

    /// Changes the keyring (rotation: install, use, remove on every node in turn).
    public mutating func updateKeyring(_ body: (inout Keyring) throws -> Void) throws {
        guard var k = envelope.keyring else { throw KeyringError.empty }
        try body(&k)
        envelope.keyring = k
    }

    /// Direct insertion for large simulations: skip the join storm by telling a node about a
    /// member as if a push/pull had delivered it.
    public mutating func learn(_ record: MemberRecord, at now: Duration) {
        switch record.state {
        case .alive:
            handleAlive(
                AliveMessage(incarnation: record.incarnation, node: record.node, address: record.address), at: now, broadcast: false)
        default: break
        }
    }
}
