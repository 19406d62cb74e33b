import NIOCore
import NIOPosix

/// Where and how the real transport listens.
public struct TransportConfig: Sendable {
    /// Address to bind UDP and TCP on (and advertise). The process must already be in the right
    /// network namespace, or hand over sockets made there.
    public var bindHost: String
    public var port: UInt16 = 7946
    /// Largest TCP frame accepted (push/pull of a big cluster); memberlist caps at 20 MiB.
    public var maxFrame = 32 << 20
    /// A TCP exchange that has not answered by then is abandoned.
    public var tcpTimeout: Duration = .seconds(10)
    public init(bindHost: String, port: UInt16 = 7946) {
        self.bindHost = bindHost
        self.port = port
    }
}

public enum TransportError: Error, Sendable {
    case badAddress(String)
    case notStarted
    case bind(String)
}

/// The real-world driver of a `GossipNode`: UDP and TCP on one port through SwiftNIO, the
/// continuous clock, and watchers. The actor owns the core and the sockets; nothing else
/// touches them.
public actor GossipAgent {
    private var node: GossipNode
    private let transport: TransportConfig
    private let epoch = ContinuousClock.now
    private var udp: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>?
    private var tcp: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>?
    private var udpWriter: NIOAsyncChannelOutboundWriter<AddressedEnvelope<ByteBuffer>>?
    private var tasks: [Task<Void, Never>] = []
    /// The socket loops: they end when their channels close and are never cancelled, because a
    /// cancelled loop would drop connections NIO already accepted, un-run (NIO traps on that).
    private var servers: [Task<Void, Never>] = []
    private var watchers: [Int: AsyncStream<GossipEvent>.Continuation] = [:]
    private var nextWatcher = 0
    private var stopped = false

    public init(
        name: String, transport: TransportConfig, config: GossipConfig = GossipConfig(), envelope: Envelope = Envelope(),
        incarnation: UInt32, seed: UInt64
    ) throws {
        guard let address = PeerAddress(transport.bindHost, port: transport.port) else {
            throw TransportError.badAddress(transport.bindHost)
        }
        self.transport = transport
        node = GossipNode(name: name, address: address, config: config, envelope: envelope, incarnation: incarnation, seed: seed)
    }

    private var now: Duration { ContinuousClock.now - epoch }

    /// Binds UDP and TCP and starts the timer loop.
    public func start() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let udp = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: transport.bindHost, port: Int(transport.port)) { ch in
                ch.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: ch)
                }
            }
        let maxFrame = transport.maxFrame
        let tcp: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
        do {
            tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: transport.bindHost, port: Int(transport.port)) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrame: maxFrame)))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
                    }
                }
        } catch {
            // The UDP side must be closed through its async channel, or NIO traps when it goes.
            try? await udp.executeThenClose { _, _ in }
            throw TransportError.bind("\(transport.bindHost):\(transport.port)/tcp: \(error)")
        }
        self.udp = udp
        self.tcp = tcp
        servers.append(Task { await self.serveUDP(udp) })
        servers.append(Task { await self.serveTCP(tcp) })
        tasks.append(Task { await self.runTimers() })
    }

    private func serveUDP(_ ch: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>) async {
        try? await ch.executeThenClose { inbound, outbound in
            self.udpWriter = outbound
            for try await datagram in inbound {
                guard let from = Self.peer(datagram.remoteAddress) else { continue }
                var buf = datagram.data
                let bytes = buf.readBytes(length: buf.readableBytes) ?? []
                let out = node.receivePacket(bytes, from: from, at: now)
                await perform(out)
            }
        }
    }

    private func serveTCP(_ server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) async {
        await withDiscardingTaskGroup { group in
            try? await server.executeThenClose { connections in
                for try await conn in connections {
                    group.addTask { await self.answer(conn) }
                }
            }
        }
    }

    /// One inbound TCP exchange: a request frame, maybe a reply frame, then close.
    private func answer(_ conn: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let timeout = transport.tcpTimeout
        let closer = conn.channel.eventLoop.scheduleTask(in: TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000)) {
            conn.channel.close(promise: nil)
        }
        defer { closer.cancel() }
        try? await conn.executeThenClose { inbound, outbound in
            var it = inbound.makeAsyncIterator()
            guard var frame = try await it.next() else { return }
            let from = Self.peer(conn.channel.remoteAddress) ?? node.address
            let (reply, out) = node.receiveStream(frame.readBytes(length: frame.readableBytes) ?? [], from: from, at: now)
            if let reply { try await outbound.write(ByteBuffer(frame: reply)) }
            await perform(out)
        }
    }

    /// One outbound TCP exchange.
    private func exchange(to: PeerAddress, bytes: [UInt8]) async {
        let maxFrame = transport.maxFrame
        let timeout = transport.tcpTimeout
        do {
            let conn = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(3))
                .connect(host: to.host, port: Int(to.port)) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try ch.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrame: maxFrame)))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
                    }
                }
            let closer = conn.channel.eventLoop.scheduleTask(in: TimeAmount.nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000))
            {
                conn.channel.close(promise: nil)
            }
            defer { closer.cancel() }
            try await conn.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(frame: bytes))
                var it = inbound.makeAsyncIterator()
                if var reply = try await it.next() {
                    let (_, out) = node.receiveStream(reply.readBytes(length: reply.readableBytes) ?? [], from: to, at: now)
                    await perform(out)
                }
            }
        } catch {
            // Unreachable or refused: the probe or sync simply gets no answer, which is what the core expects.
        }
    }

    private func runTimers() async {
        while !stopped {
            let wait = min(max(node.nextDeadline - now, .milliseconds(1)), .milliseconds(20))
            try? await Task.sleep(for: wait)
            if now >= node.nextDeadline { await perform(node.tick(at: now)) }
        }
    }

    private func perform(_ outputs: [GossipOutput]) async {
        for o in outputs {
            switch o {
            case let .packet(to, bytes):
                guard let writer = udpWriter, let addr = try? SocketAddress(ipAddress: to.host, port: Int(to.port)) else { continue }
                try? await writer.write(AddressedEnvelope(remoteAddress: addr, data: ByteBuffer(bytes: bytes)))
            case let .stream(to, bytes):
                Task { await self.exchange(to: to, bytes: bytes) }
            case let .event(e):
                for w in watchers.values { w.yield(e) }
            }
        }
    }

    static func peer(_ a: SocketAddress?) -> PeerAddress? {
        guard let a, let ip = a.ipAddress, let port = a.port else { return nil }
        return PeerAddress(ip, port: UInt16(port))
    }

    // MARK: API

    public var name: String { node.name }
    public var stats: GossipStats { node.stats }
    /// Packets and frames refused (no key, wrong key, wrong cluster, garbage), by cause.
    public var dropped: GossipDrops { node.stats.dropped }
    public var members: [Member] { Array(node.members.values) }

    /// Every event from now on (membership, table changes, warnings).
    public func events() -> AsyncStream<GossipEvent> {
        let (stream, cont) = AsyncStream<GossipEvent>.makeStream(bufferingPolicy: .unbounded)
        let id = nextWatcher
        nextWatcher += 1
        watchers[id] = cont
        cont.onTermination = { _ in Task { await self.dropWatcher(id) } }
        return stream
    }

    /// Table changes of one network: first a create for every visible entry, then live changes.
    public func watch(network: String) -> AsyncStream<TableChange> {
        let all = events()
        let snapshot = node.entries(network: network).sorted { $0.key < $1.key }.map { k, e in
            TableChange(kind: .create, network: k.network, table: k.table, key: k.key, owner: e.owner, value: e.value)
        }
        return AsyncStream { cont in
            for c in snapshot { cont.yield(c) }
            let t = Task {
                for await e in all { if case let .table(c) = e, c.network == network { cont.yield(c) } }
                cont.finish()
            }
            cont.onTermination = { _ in t.cancel() }
        }
    }

    private func dropWatcher(_ id: Int) { watchers[id] = nil }

    public func join(seeds: [PeerAddress]) async { await perform(node.join(seeds: seeds, at: now)) }
    public func joinNetwork(_ n: String) async { await perform(node.joinNetwork(n, at: now)) }
    public func leaveNetwork(_ n: String) async { await perform(node.leaveNetwork(n, at: now)) }
    public func set(network: String, table: String, key: String, value: [UInt8]) async throws {
        await perform(try node.set(network: network, table: table, key: key, value: value, at: now))
    }
    public func delete(network: String, table: String, key: String) async throws {
        await perform(try node.delete(network: network, table: table, key: key, at: now))
    }
    /// Sends this network's pending table news now rather than at the next gossip round.
    public func flush(network: String) async { await perform(node.flush(network: network)) }
    public func entries(network: String) -> [EntryKey: TableEntry] { node.entries(network: network) }
    /// Nodes this agent knows carry `network`: table news goes only to them.
    public func nodes(on network: String) -> [String] { node.nodes(on: network) }
    public func updateKeyring(_ body: (inout Keyring) throws -> Void) throws { try node.updateKeyring(body) }

    /// Graceful leave, then a short wait so the news is out before the sockets close.
    public func leave() async {
        await perform(node.leave(at: now))
        try? await Task.sleep(for: node.config.gossipInterval * 3)
    }

    public func shutdown() async {
        stopped = true
        try? await udp?.channel.close()
        try? await tcp?.channel.close()
        for t in tasks { t.cancel() }
        for w in watchers.values { w.finish() }
        watchers = [:]
    }
}
