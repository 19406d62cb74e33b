import CMeshShim
import CNetlink
import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// A change the kernel announced on an rtnetlink multicast group.
public enum RouteEvent: Sendable, Equatable {
    case linkChanged(Link)
    case linkRemoved(Link)
    case addressAdded(InterfaceAddress)
    case addressRemoved(InterfaceAddress)
    case routeAdded(Route)
    case routeRemoved(Route)
    case neighborChanged(Neighbor)
    case neighborRemoved(Neighbor)
    case fdbChanged(FDBEntry)
    case fdbRemoved(FDBEntry)
    /// The socket overran (ENOBUFS): events were lost and the caller must re-read what it cares about.
    case overrun
}

/// rtnetlink notifications of one namespace as an AsyncSequence. A dedicated thread reads the
/// subscribed socket; it stops when the sequence's consumer goes away.
public struct NetlinkMonitor: AsyncSequence, Sendable {
    public typealias Element = RouteEvent
    public enum Group: Sendable { case link, neighbor, ipv4Address, ipv6Address, ipv4Route, ipv6Route }

    private let stream: AsyncStream<RouteEvent>

    public init(namespace: NetworkNamespace? = nil, groups: [Group]) throws(KernelError) {
        var options = NetlinkSocket.Options()
        options.receiveTimeoutMilliseconds = 200  // how often the reader looks for cancellation
        let fd: Int32 = try {
            () throws(KernelError) -> Int32 in
            let open = { () throws(KernelError) -> Int32 in try Self.openSubscribed(groups: groups, options: options) }
            if let namespace { return try namespace.run(open) }
            return try open()
        }()
        let (stream, continuation) = AsyncStream<RouteEvent>.makeStream(bufferingPolicy: .bufferingNewest(65_536))
        self.stream = stream
        let state = MonitorState(fd: fd, continuation: continuation)
        continuation.onTermination = { _ in state.stop.store(true, ordering: .relaxed) }
        let thread = Thread { state.run() }
        thread.name = "meshd.netlink.monitor"
        thread.start()
    }

    public func makeAsyncIterator() -> AsyncStream<RouteEvent>.Iterator { stream.makeAsyncIterator() }

    private static func openSubscribed(groups: [Group], options: NetlinkSocket.Options) throws(KernelError) -> Int32 {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        if fd < 0 { throw .system(call: "socket(AF_NETLINK)", errno: .current) }
        var addr = sockaddr_nl()
        addr.nl_family = sa_family_t(AF_NETLINK)
        let bind = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        if bind < 0 {
            let e = Errno.current
            close(fd)
            throw .system(call: "bind(netlink)", errno: e)
        }
        for g in groups {
            var group: Int32
            switch g {
            case .link: group = Int32(RTNLGRP_LINK.rawValue)
            case .neighbor: group = Int32(RTNLGRP_NEIGH.rawValue)
            case .ipv4Address: group = Int32(RTNLGRP_IPV4_IFADDR.rawValue)
            case .ipv6Address: group = Int32(RTNLGRP_IPV6_IFADDR.rawValue)
            case .ipv4Route: group = Int32(RTNLGRP_IPV4_ROUTE.rawValue)
            case .ipv6Route: group = Int32(RTNLGRP_IPV6_ROUTE.rawValue)
            }
            if setsockopt(fd, meshd_SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, socklen_t(MemoryLayout<Int32>.size)) < 0 {
                let e = Errno.current
                close(fd)
                throw .system(call: "NETLINK_ADD_MEMBERSHIP", errno: e)
            }
        }
        var rcvbuf: Int32 = 8 << 20
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, 4) < 0 { _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, 4) }
        var tv = timeval(tv_sec: 0, tv_usec: Int(options.receiveTimeoutMilliseconds) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func decode(_ m: NetlinkMessage) -> RouteEvent? {
        switch Int(m.type) {
        case Int(RTM_NEWLINK): return LinkMessages.decode(m).map(RouteEvent.linkChanged)
        case Int(RTM_DELLINK):
            var copy = m
            copy.type = UInt16(RTM_NEWLINK)
            return LinkMessages.decode(copy).map(RouteEvent.linkRemoved)
        case Int(RTM_NEWADDR): return AddressMessages.decode(m).map(RouteEvent.addressAdded)
        case Int(RTM_DELADDR):
            var copy = m
            copy.type = UInt16(RTM_NEWADDR)
            return AddressMessages.decode(copy).map(RouteEvent.addressRemoved)
        case Int(RTM_NEWROUTE): return RouteMessages.decode(m).map(RouteEvent.routeAdded)
        case Int(RTM_DELROUTE):
            var copy = m
            copy.type = UInt16(RTM_NEWROUTE)
            return RouteMessages.decode(copy).map(RouteEvent.routeRemoved)
        case Int(RTM_NEWNEIGH), Int(RTM_DELNEIGH):
            let removed = Int(m.type) == Int(RTM_DELNEIGH)
            if let f = NeighbourMessages.decodeFDB(m) { return removed ? .fdbRemoved(f) : .fdbChanged(f) }
            if let n = NeighbourMessages.decodeNeighbor(m) { return removed ? .neighborRemoved(n) : .neighborChanged(n) }
            return nil
        default: return nil
        }
    }
}

/// The reader thread's state: the fd it owns and the stop flag the consumer sets.
private final class MonitorState: Sendable {
    let fd: Int32
    let continuation: AsyncStream<RouteEvent>.Continuation
    let stop = Atomic<Bool>(false)

    init(fd: Int32, continuation: AsyncStream<RouteEvent>.Continuation) {
        self.fd = fd
        self.continuation = continuation
    }

    func run() {
        var buf = [UInt8](repeating: 0, count: 256 << 10)
        defer {
            close(fd)
            continuation.finish()
        }
        while !stop.load(ordering: .relaxed) {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                let e = Errno.current.rawValue
                if e == EAGAIN || e == EINTR { continue }
                if e == ENOBUFS {
                    continuation.yield(.overrun)
                    continue
                }
                return
            }
            guard let messages = try? NetlinkMessage.parseAll(buf[0..<n]) else { continue }
            for m in messages { if let ev = NetlinkMonitor.decode(m) { continuation.yield(ev) } }
        }
    }
}
