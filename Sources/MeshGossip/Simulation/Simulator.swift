/// Network behaviour between simulated nodes.
public struct NetworkConditions: Sendable {
    /// Probability a datagram (or a TCP segment, which then costs a retransmission) is lost.
    public var loss = 0.0
    /// Probability a datagram is delivered twice.
    public var duplicate = 0.0
    public var latency: Duration = .microseconds(500)
    public var jitter: Duration = .microseconds(500)
    public init(loss: Double = 0, duplicate: Double = 0, latency: Duration = .microseconds(500), jitter: Duration = .microseconds(500)) {
        self.loss = loss
        self.duplicate = duplicate
        self.latency = latency
        self.jitter = jitter
    }
}

/// Runs many `GossipNode`s in one process against a fake clock and a fake network with loss,
/// delay, duplication, partitions, crashes and pauses. Deterministic for a given seed.
public final class Simulator {
    enum Event {
        case tick(Int)
        case packet(to: Int, from: Int, bytes: [UInt8])
        case stream(to: Int, from: Int, bytes: [UInt8], isReply: Bool)
    }

    public private(set) var nodes: [GossipNode]
    public private(set) var now: Duration = .zero
    public var conditions: NetworkConditions
    /// Group per node; traffic between different groups is dropped. nil = no partition.
    public var partition: [Int]?
    public private(set) var crashed: Set<Int> = []
    public private(set) var paused: Set<Int> = []
    /// Bytes each node put on the wire (UDP + TCP).
    public private(set) var bytesSent: [Int]
    public private(set) var packetsDelivered = 0
    /// Largest UDP payload any node sent (must stay ≤ the configured packet size).
    public private(set) var largestPacket = 0
    /// Sees every event a node reports, with the node's index and the time.
    public var observer: ((Int, GossipEvent, Duration) -> Void)?

    private var queue = EventQueue<Event>()
    private var scheduled: [Duration?]
    private var index: [PeerAddress: Int] = [:]
    private var rng: SeededRandom

    public init(nodes: [GossipNode], conditions: NetworkConditions = NetworkConditions(), seed: UInt64) {
        self.nodes = nodes
        self.conditions = conditions
        rng = SeededRandom(seed: seed)
        bytesSent = Array(repeating: 0, count: nodes.count)
        scheduled = Array(repeating: nil, count: nodes.count)
        for (i, n) in nodes.enumerated() { index[n.address] = i }
        for i in nodes.indices { schedule(i) }
    }

    /// `n` fresh nodes named n0…n(n−1), each joining through node 0 (a real join storm).
    public static func joining(
        _ n: Int, config: GossipConfig, envelope: Envelope = Envelope(), conditions: NetworkConditions = NetworkConditions(), seed: UInt64
    ) -> Simulator {
        let nodes = (0..<n).map { i in
            GossipNode(
                name: "n\(i)", address: .simulated(i), config: config, envelope: envelope, incarnation: 1, seed: seed &+ UInt64(i) &* 7919)
        }
        let sim = Simulator(nodes: nodes, conditions: conditions, seed: seed)
        for i in 1..<n { sim.perform(i) { node, now in node.join(seeds: [.simulated(0)], at: now) } }
        return sim
    }

    /// `n` nodes that already know each other and share `networks` (as after convergence), built
    /// from one template so their identical views share storage: this is what lets 10,000 nodes fit.
    public static func converged(
        _ n: Int, config: GossipConfig, networks: [String] = [], envelope: Envelope = Envelope(),
        conditions: NetworkConditions = NetworkConditions(), seed: UInt64
    ) -> Simulator {
        var template = GossipNode(name: "n0", address: .simulated(0), config: config, envelope: envelope, incarnation: 1, seed: seed)
        for i in 1..<n {
            template.learn(MemberRecord(node: "n\(i)", address: .simulated(i), incarnation: 1, state: .alive), at: .zero)
        }
        for net in networks {
            template.networks.insert(net)
            for i in 0..<n { template.applyNetworkEvent(NetworkEvent(ltime: 1, node: "n\(i)", network: net, joined: true), at: .zero) }
        }
        template.clock = 1
        template.memberQueue = BroadcastQueue()
        template.networkQueues = [:]
        template.outbox = []
        let nodes = (0..<n).map { i in template.clone(name: "n\(i)", address: .simulated(i), seed: seed &+ UInt64(i) &* 7919) }
        return Simulator(nodes: nodes, conditions: conditions, seed: seed)
    }

    public func index(of name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    /// Calls into node `i` (an operator action) and sends what it returns.
    @discardableResult
    public func perform(_ i: Int, _ body: (inout GossipNode, Duration) throws -> [GossipOutput]) rethrows -> [GossipOutput] {
        let out = try body(&nodes[i], now)
        dispatch(from: i, out)
        schedule(i)
        return out
    }

    // MARK: faults

    public func crash(_ i: Int) { crashed.insert(i) }
    /// Drop every datagram to or from node `i` (TCP still works): a firewall that blocks UDP.
    public func blockUDP(of i: Int) { udpBlocked.insert(i) }
    public func unblockUDP(of i: Int) { udpBlocked.remove(i) }
    private var udpBlocked: Set<Int> = []
    public func pause(_ i: Int) { paused.insert(i) }
    public func resume(_ i: Int) {
        paused.remove(i)
        scheduled[i] = nil
        schedule(i)
    }

    /// The process comes back with empty state and a higher incarnation, and rejoins via `seed`.
    public func restart(_ i: Int, seed joinSeed: Int, incarnation: UInt32) {
        let old = nodes[i]
        nodes[i] = GossipNode(
            name: old.name, address: old.address, config: old.config, envelope: old.envelope,
            incarnation: incarnation, seed: rng.next(), now: now)
        crashed.remove(i)
        paused.remove(i)
        scheduled[i] = nil
        let seedAddress = nodes[joinSeed].address
        perform(i) { node, now in node.join(seeds: [seedAddress], at: now) }
    }

    // MARK: running

    /// Runs until `time` (simulated).
    public func run(until time: Duration) {
        while let t = queue.nextTime, t <= time {
            let (at, ev) = queue.pop()!
            now = at
            handle(ev)
        }
        now = max(now, time)
    }

    public func run(for d: Duration) { run(until: now + d) }

    /// Runs in steps of `step` until `done()` or `limit`; returns the time it became true.
    @discardableResult
    public func run(until done: () -> Bool, step: Duration = .milliseconds(50), limit: Duration) -> Duration? {
        let end = now + limit
        while now < end {
            if done() { return now }
            run(until: min(now + step, end))
        }
        return done() ? now : nil
    }

    private func alive(_ i: Int) -> Bool { !crashed.contains(i) && !paused.contains(i) }

    private func reachable(_ a: Int, _ b: Int) -> Bool {
        guard let p = partition else { return true }
        return p[a] == p[b]
    }

    private func delay() -> Duration { conditions.latency + conditions.jitter * rng.unit() }

    private func handle(_ ev: Event) {
        switch ev {
        case let .tick(i):
            guard scheduled[i] == now else { return }
            scheduled[i] = nil
            guard alive(i) else { return }
            let out = nodes[i].tick(at: now)
            dispatch(from: i, out)
            schedule(i)
        case let .packet(to, from, bytes):
            guard alive(to) else { return }
            packetsDelivered += 1
            let out = nodes[to].receivePacket(bytes, from: nodes[from].address, at: now)
            dispatch(from: to, out)
            schedule(to)
        case let .stream(to, from, bytes, isReply):
            guard alive(to) else { return }
            let (reply, out) = nodes[to].receiveStream(bytes, from: nodes[from].address, at: now)
            dispatch(from: to, out)
            schedule(to)
            if let reply, !isReply, alive(from), reachable(to, from) {
                bytesSent[to] += reply.count
                queue.push(now + tcpDelay(), .stream(to: from, from: to, bytes: reply, isReply: true))
            }
        }
    }

    /// TCP: a handshake plus the data, each lost segment costing a 200 ms retransmission.
    private func tcpDelay() -> Duration {
        var d = delay() * 3
        for _ in 0..<3 where rng.unit() < conditions.loss { d += .milliseconds(200) }
        return d
    }

    private func dispatch(from i: Int, _ outs: [GossipOutput]) {
        for o in outs {
            switch o {
            case let .packet(to, bytes):
                bytesSent[i] += bytes.count
                largestPacket = max(largestPacket, bytes.count)
                guard let j = index[to], reachable(i, j), !udpBlocked.contains(i), !udpBlocked.contains(j) else { continue }
                if rng.unit() < conditions.loss { continue }
                queue.push(now + delay(), .packet(to: j, from: i, bytes: bytes))
                if conditions.duplicate > 0 && rng.unit() < conditions.duplicate {
                    queue.push(now + delay() * 2, .packet(to: j, from: i, bytes: bytes))
                }
            case let .stream(to, bytes):
                bytesSent[i] += bytes.count
                guard let j = index[to], reachable(i, j), alive(j) else { continue }
                queue.push(now + tcpDelay(), .stream(to: j, from: i, bytes: bytes, isReply: false))
            case let .event(e):
                observer?(i, e, now)
            }
        }
    }

    private func schedule(_ i: Int) {
        let d = max(nodes[i].nextDeadline, now)
        if let s = scheduled[i], s <= d { return }
        scheduled[i] = d
        queue.push(d, .tick(i))
    }
}

extension GossipNode {
    /// The same view under another identity (the simulator's template trick; storage is shared
    /// until either copy changes).
    func clone(name: String, address: PeerAddress, seed: UInt64) -> GossipNode {
        var c = self
        c.name = name
        c.address = address
        c.rng = SeededRandom(seed: seed)
        c.nextProbeAt = config.probeInterval * c.rng.unit()
        c.nextGossipAt = config.gossipInterval * c.rng.unit()
        c.nextPushPullAt = config.pushPullInterval * (1 + c.rng.unit())
        c.nextReconnectAt = config.reconnectInterval * (1 + c.rng.unit())
        return c
    }
}
