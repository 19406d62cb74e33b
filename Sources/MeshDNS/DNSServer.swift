import MeshKernel
import NIOCore
import NIOPosix
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// The embedded DNS server: one set of SwiftNIO event loops serving 127.0.0.11:53 (UDP and TCP)
/// inside every attached task namespace. Sockets are made inside the namespace on a throwaway
/// thread (NetworkNamespace.run) and adopted; no event loop thread ever changes namespace.
public final class DNSServer: Sendable {
    public struct Configuration: Sendable {
        public var address: IPAddress
        public var port: UInt16
        public var ttl: UInt32
        public var forwarding: DNSForwarder.Configuration
        /// UDP sockets per namespace sharing the port (SO_REUSEPORT), so that many loops can read
        /// one busy namespace. One suffices for a task; the benchmark uses more.
        public var udpSocketsPerNamespace: Int
        /// Datagrams read per wakeup (recvmmsg).
        public var datagramBatch: Int
        /// Open TCP connections per namespace; more are closed on accept, so one task cannot use
        /// up the daemon's file descriptors.
        public var maxTCPConnectionsPerNamespace: Int

        public init(
            address: IPAddress = IPAddress(ResolvConf.embeddedServer)!, port: UInt16 = 53,
            ttl: UInt32 = DNSResolver.defaultTTL, forwarding: DNSForwarder.Configuration,
            udpSocketsPerNamespace: Int = 1, datagramBatch: Int = 32, maxTCPConnectionsPerNamespace: Int = 128
        ) {
            self.address = address
            self.port = port
            self.ttl = ttl
            self.forwarding = forwarding
            self.udpSocketsPerNamespace = max(1, udpSocketsPerNamespace)
            self.datagramBatch = max(1, datagramBatch)
            self.maxTCPConnectionsPerNamespace = max(1, maxTCPConnectionsPerNamespace)
        }

        /// Upstreams from the node's resolv.conf, queried from `nodeNamespace` (nil: this process's).
        public static func fromNode(resolvConf path: String = "/etc/resolv.conf", nodeNamespace: NetworkNamespace? = nil) -> Configuration {
            Configuration(forwarding: .init(upstreams: DNSUpstream.from(ResolvConf.read(path)), namespace: nodeNamespace))
        }
    }

    struct Attachment {
        var scope: DNSScope
        var channels: [Channel]
        var resolvConf: String?
    }

    public let configuration: Configuration
    public let store: DNSRecordStore
    public let forwarder: DNSForwarder
    let group: EventLoopGroup
    /// Set when the server made its own event loops and must stop them.
    private let ownedGroup: MultiThreadedEventLoopGroup?
    let processor: DNSQueryProcessor
    private let attachments = Mutex<[UInt64: Attachment]>([:])

    private init(
        configuration: Configuration, store: DNSRecordStore, forwarder: DNSForwarder, group: EventLoopGroup,
        ownedGroup: MultiThreadedEventLoopGroup?
    ) {
        self.configuration = configuration
        self.store = store
        self.forwarder = forwarder
        self.group = group
        self.ownedGroup = ownedGroup
        processor = DNSQueryProcessor(resolver: DNSResolver(ttl: configuration.ttl))
    }

    public static func start(_ configuration: Configuration, store: DNSRecordStore, group: EventLoopGroup) async throws -> DNSServer {
        let forwarder = try await DNSForwarder.start(configuration.forwarding, group: group)
        return DNSServer(configuration: configuration, store: store, forwarder: forwarder, group: group, ownedGroup: nil)
    }

    /// Starts a server on `threads` event loops of its own, stopped by `shutdown()`.
    public static func start(_ configuration: Configuration, store: DNSRecordStore, threads: Int) async throws -> DNSServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        do {
            let forwarder = try await DNSForwarder.start(configuration.forwarding, group: group)
            return DNSServer(configuration: configuration, store: store, forwarder: forwarder, group: group, ownedGroup: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Starts serving inside `ns` for a task on `networks`; writes `resolvConf` (a path, e.g. the
    /// task's /etc/resolv.conf as seen from the node) naming 127.0.0.11 when given.
    public func attach(
        _ ns: NetworkNamespace, networks: [String], resolvConf: String? = nil,
        nodeResolvConf: ResolvConf.Contents = ResolvConf.read()
    ) async throws {
        let key = try Self.identity(ns)
        guard attachments.withLock({ $0[key] }) == nil else { throw KernelError.invalidArgument("\(ns) is already attached") }
        // A fresh namespace has lo down; 127.0.0.0/8 is routable on lo only once it is up.
        let nl = try NetlinkHandle(namespace: ns)
        try await nl.linkSetUp("lo")
        let cfg = configuration
        let fds = try ns.run { () throws(KernelError) -> [Int32] in
            var made: [Int32] = []
            do throws(KernelError) {
                for _ in 0..<cfg.udpSocketsPerNamespace {
                    made.append(
                        try NamespaceSockets.bound(
                            Int32(SOCK_DGRAM.rawValue), address: cfg.address, port: cfg.port,
                            reusePort: cfg.udpSocketsPerNamespace > 1))
                }
                made.append(try NamespaceSockets.bound(Int32(SOCK_STREAM.rawValue), address: cfg.address, port: cfg.port, reusePort: false))
                return made
            } catch {
                made.forEach { close($0) }
                throw error
            }
        }
        let scope = DNSScope(networks: networks)
        let shared = DNSServingContext(processor: processor, store: store, forwarder: forwarder, scope: scope, metrics: DNSMetrics())
        let tcpBudget = ConnectionBudget(limit: cfg.maxTCPConnectionsPerNamespace)
        var channels: [Channel] = []
        do {
            for (i, fd) in fds.enumerated() {
                if i < fds.count - 1 {
                    channels.append(
                        try await DatagramBootstrap(group: group)
                            .channelOption(.datagramVectorReadMessageCount, value: cfg.datagramBatch)
                            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 4096 * cfg.datagramBatch))
                            .channelInitializer { ch in
                                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(DNSUDPHandler(shared)) }
                            }
                            .withBoundSocket(fd).get())
                } else {
                    channels.append(
                        try await ServerBootstrap(group: group)
                            .childChannelInitializer { ch in
                                ch.eventLoop.makeCompletedFuture {
                                    // Failing the initializer makes NIO close the new connection.
                                    try tcpBudget.admit(ch)
                                    let ops = ch.pipeline.syncOperations
                                    try ops.addHandler(IdleStateHandler(readTimeout: .seconds(10)))
                                    try ops.addHandler(ByteToMessageHandler(DNSTCPFrameDecoder()))
                                    try ops.addHandler(DNSTCPHandler(shared))
                                }
                            }
                            .withBoundSocket(fd).get())
                }
            }
            if let resolvConf { try ResolvConf.writeTaskFile(to: resolvConf, node: nodeResolvConf) }
        } catch {
            for ch in channels { try? await ch.close() }
            for fd in fds.dropFirst(channels.count) { close(fd) }
            throw error
        }
        attachments.withLock { $0[key] = Attachment(scope: scope, channels: channels, resolvConf: resolvConf) }
    }

    /// The task joined or left a network: its queries see the new set from the next query on.
    public func setNetworks(_ networks: [String], for ns: NetworkNamespace) throws {
        let key = try Self.identity(ns)
        guard let a = attachments.withLock({ $0[key] }) else { throw KernelError.invalidArgument("\(ns) is not attached") }
        a.scope.networks = networks
    }

    /// Stops serving inside `ns` (the namespace itself is left alone).
    public func detach(_ ns: NetworkNamespace) async throws {
        let key = try Self.identity(ns)
        guard let a = attachments.withLock({ $0.removeValue(forKey: key) }) else { return }
        for ch in a.channels { try? await ch.close() }
    }

    public var attachedCount: Int { attachments.withLock { $0.count } }

    public func shutdown() async {
        let all = attachments.withLock { a in
            defer { a.removeAll() }
            return Array(a.values)
        }
        for a in all { for ch in a.channels { try? await ch.close() } }
        await forwarder.close()
        try? await ownedGroup?.shutdownGracefully()
    }

    /// A namespace is identified by its nsfs inode, whichever path or fd it was opened by.
    static func identity(_ ns: NetworkNamespace) throws(KernelError) -> UInt64 {
        var st = stat()
        if fstat(ns.fd, &st) < 0 { throw .system(call: "fstat(\(ns))", errno: .current) }
        return UInt64(st.st_ino)
    }
}

/// Counts one namespace's open TCP connections against its limit.
final class ConnectionBudget: Sendable {
    struct Exhausted: Error {}
    private let open = Atomic<Int>(0)
    let limit: Int
    init(limit: Int) { self.limit = limit }

    func admit(_ channel: Channel) throws {
        guard open.add(1, ordering: .relaxed).newValue <= limit else {
            open.subtract(1, ordering: .relaxed)
            throw Exhausted()
        }
        channel.closeFuture.whenComplete { _ in self.open.subtract(1, ordering: .relaxed) }
    }
}
