import CNetlink
#if canImport(Glibc)
    import Glibc
#endif

/// One change to rtnetlink state, so a caller can hand many of them to `apply` as one pipelined batch.
public enum RouteOperation: Sendable {
    case linkAdd(LinkSpec)
    case linkDel(LinkRef)
    case linkSet(LinkRef, LinkChange)
    case addrAdd(InterfaceAddress)
    case addrDel(InterfaceAddress)
    /// `.add`, `.replace`, `.append` or `.delete`.
    case route(NetlinkVerb, Route)
    case neigh(NetlinkVerb, Neighbor)
    case fdb(NetlinkVerb, FDBEntry)
    /// `.add` or `.delete`.
    case rule(NetlinkVerb, FIBRule)

    /// Every device name this operation refers to, so a batch resolves each name once.
    var linkNames: [String] {
        func n(_ r: LinkRef?) -> [String] { if case .name(let s)? = r { return [s] } else { return [] } }
        switch self {
        case .linkAdd(let s): return n(s.master)
        case .linkDel(let r): return n(r)
        case .linkSet(let r, let c): return n(r) + n(c.master)
        case .addrAdd(let a), .addrDel(let a): return n(a.device)
        case .route(_, let r): return n(r.device)
        case .neigh(_, let x): return n(x.device)
        case .fdb(_, let e): return n(e.device)
        case .rule: return []
        }
    }
}

/// rtnetlink verbs for one network namespace, named as iproute2 and vishvananda/netlink name them.
/// Holds one long-lived NETLINK_ROUTE socket opened inside that namespace.
public final class NetlinkHandle: Sendable {
    public let socket: NetlinkSocket
    /// The namespace the socket lives in; nil for the namespace of the creating thread.
    public let namespace: NetworkNamespace?

    /// Opens a handle inside `namespace` (or the caller's own namespace when nil).
    public init(namespace: NetworkNamespace? = nil, options: NetlinkSocket.Options = .init()) throws(KernelError) {
        self.namespace = namespace
        if let namespace {
            socket = try namespace.openNetlink(protocol: NETLINK_ROUTE, options: options)
        } else {
            socket = try NetlinkSocket(protocol: NETLINK_ROUTE, options: options)
        }
    }

    // MARK: links

    public func linkAdd(_ spec: LinkSpec) async throws(KernelError) { try await apply([.linkAdd(spec)]) }
    public func linkDel(_ link: LinkRef) async throws(KernelError) { try await apply([.linkDel(link)]) }
    public func linkSet(_ link: LinkRef, _ change: LinkChange) async throws(KernelError) { try await apply([.linkSet(link, change)]) }
    public func linkSetUp(_ link: LinkRef) async throws(KernelError) { try await linkSet(link, LinkChange(up: true)) }
    public func linkSetDown(_ link: LinkRef) async throws(KernelError) { try await linkSet(link, LinkChange(up: false)) }
    public func linkSetMTU(_ link: LinkRef, _ mtu: UInt32) async throws(KernelError) { try await linkSet(link, LinkChange(mtu: mtu)) }
    public func linkSetMAC(_ link: LinkRef, _ mac: MACAddress) async throws(KernelError) { try await linkSet(link, LinkChange(mac: mac)) }
    public func linkSetMaster(_ link: LinkRef, _ master: LinkRef?) async throws(KernelError) {
        try await linkSet(link, LinkChange(master: master ?? .index(0)))
    }
    public func linkSetName(_ link: LinkRef, _ name: String) async throws(KernelError) { try await linkSet(link, LinkChange(name: name)) }
    /// Moves the link into `namespace` (`ip link set … netns …`). A VXLAN device keeps its UDP socket
    /// in the namespace it was created in, which is how vxlan0 stays on the underlay.
    public func linkSetNamespace(_ link: LinkRef, _ namespace: NetworkNamespace) async throws(KernelError) {
        try await linkSet(link, LinkChange(namespace: namespace))
    }

    public func linkGet(_ link: LinkRef) async throws(KernelError) -> Link {
        let replies = try await socket.request(try LinkMessages.get(link))
        guard let l = replies.lazy.compactMap(LinkMessages.decode).first else {
            throw .malformedReply(operation: "ip link show \(link)", detail: "no RTM_NEWLINK in reply")
        }
        return l
    }

    public func linkList() async throws(KernelError) -> [Link] {
        try await dump(LinkMessages.dump()).compactMap(LinkMessages.decode)
    }

    // MARK: addresses

    public func addrAdd(_ a: InterfaceAddress) async throws(KernelError) { try await apply([.addrAdd(a)]) }
    public func addrDel(_ a: InterfaceAddress) async throws(KernelError) { try await apply([.addrDel(a)]) }

    /// Addresses of one device (filtered in the kernel) or of all; `family` AF_INET, AF_INET6 or AF_UNSPEC.
    public func addrList(device: LinkRef? = nil, family: Int32 = AF_UNSPEC) async throws(KernelError) -> [InterfaceAddress] {
        let index = try await device.asyncMap { (d) async throws(KernelError) in try await resolve(d) }
        return try await dump(AddressMessages.dump(family: UInt8(family), index: index))
            .compactMap(AddressMessages.decode)
            .filter { index == nil || $0.device == .index(index!) }
    }

    // MARK: routes

    public func routeAdd(_ r: Route) async throws(KernelError) { try await apply([.route(.add, r)]) }
    public func routeReplace(_ r: Route) async throws(KernelError) { try await apply([.route(.replace, r)]) }
    public func routeDel(_ r: Route) async throws(KernelError) { try await apply([.route(.delete, r)]) }

    /// Unicast routes of one table (filtered in the kernel), or of every table when `table` is nil.
    /// A table that was never used does not exist yet: the kernel answers ENOENT, which is an empty list.
    public func routeList(family: Int32 = AF_INET, table: UInt32? = Route.mainTable) async throws(KernelError) -> [Route] {
        let messages: [NetlinkMessage]
        do {
            messages = try await dump(RouteMessages.dump(family: UInt8(family), table: table))
        } catch let e where table != nil && e.errno == .noEntry {
            return []
        }
        return messages.compactMap(RouteMessages.decode).filter { table == nil || $0.table == table }
    }

    // MARK: policy rules

    public func ruleAdd(_ r: FIBRule) async throws(KernelError) { try await apply([.rule(.add, r)]) }
    public func ruleDel(_ r: FIBRule) async throws(KernelError) { try await apply([.rule(.delete, r)]) }

    /// Every rule of `family` that sends to a table, the kernel's own (local, main, default) among them.
    public func ruleList(family: Int32 = AF_INET) async throws(KernelError) -> [FIBRule] {
        try await dump(RuleMessages.dump(family: UInt8(family))).compactMap(RuleMessages.decode)
    }

    // MARK: neighbours

    public func neighAdd(_ n: Neighbor) async throws(KernelError) { try await apply([.neigh(.add, n)]) }
    public func neighReplace(_ n: Neighbor) async throws(KernelError) { try await apply([.neigh(.replace, n)]) }
    public func neighDel(_ n: Neighbor) async throws(KernelError) { try await apply([.neigh(.delete, n)]) }

    public func neighList(device: LinkRef? = nil, family: Int32 = AF_INET) async throws(KernelError) -> [Neighbor] {
        let index = try await device.asyncMap { (d) async throws(KernelError) in try await resolve(d) }
        return try await dump(NeighbourMessages.dump(family: UInt8(family), index: index))
            .compactMap(NeighbourMessages.decodeNeighbor)
    }

    // MARK: bridge FDB

    public func fdbAdd(_ e: FDBEntry) async throws(KernelError) { try await apply([.fdb(.add, e)]) }
    /// Adds another remote for the same MAC (`bridge fdb append`): how an all-zeros MAC floods to several VTEPs.
    public func fdbAppend(_ e: FDBEntry) async throws(KernelError) { try await apply([.fdb(.append, e)]) }
    public func fdbReplace(_ e: FDBEntry) async throws(KernelError) { try await apply([.fdb(.replace, e)]) }
    public func fdbDel(_ e: FDBEntry) async throws(KernelError) { try await apply([.fdb(.delete, e)]) }

    public func fdbList(device: LinkRef) async throws(KernelError) -> [FDBEntry] {
        let index = try await resolve(device)
        return try await dump(NeighbourMessages.dump(family: UInt8(AF_BRIDGE), index: index))
            .compactMap(NeighbourMessages.decodeFDB)
            .filter { $0.device == .index(index) }
    }

    // MARK: batches

    /// Applies every operation in one pipelined exchange. rtnetlink has no transactions: on failure
    /// the others still apply and the error lists each failed operation with the kernel's reason.
    /// A single failed operation is thrown as its own error, not wrapped in `.batch`.
    public func apply(_ ops: [RouteOperation]) async throws(KernelError) {
        if ops.isEmpty { return }
        let names = Set(ops.flatMap(\.linkNames))
        let indexes = try await resolveAll(names)
        func index(_ r: LinkRef?) -> Int32? {
            switch r {
            case .index(let i)?: return i
            case .name(let n)?: return indexes[n]
            case nil: return nil
            }
        }
        var requests: [NetlinkRequest] = []
        requests.reserveCapacity(ops.count)
        for op in ops {
            switch op {
            case .linkAdd(let s): requests.append(try LinkMessages.add(s, masterIndex: index(s.master)))
            case .linkDel(let r): requests.append(try LinkMessages.delete(index: index(r)!, label: r.description))
            case .linkSet(let r, let c):
                requests.append(try LinkMessages.set(index: index(r)!, label: r.description, c, masterIndex: index(c.master)))
            case .addrAdd(let a): requests.append(try AddressMessages.change(.add, a, index: index(a.device)!))
            case .addrDel(let a): requests.append(try AddressMessages.change(.delete, a, index: index(a.device)!))
            case .route(let v, let r): requests.append(try RouteMessages.change(v, r, deviceIndex: index(r.device)))
            case .neigh(let v, let n): requests.append(try NeighbourMessages.change(v, n, index: index(n.device)!))
            case .fdb(let v, let e): requests.append(try NeighbourMessages.change(v, e, index: index(e.device)!))
            case .rule(let v, let r): requests.append(try RuleMessages.change(v, r))
            }
        }
        try Self.collect(await socket.transact(requests))
    }

    /// The index of a device.
    public func resolve(_ link: LinkRef) async throws(KernelError) -> Int32 {
        switch link {
        case .index(let i): return i
        case .name: return try await linkGet(link).index
        }
    }

    private func resolveAll(_ names: Set<String>) async throws(KernelError) -> [String: Int32] {
        if names.isEmpty { return [:] }
        let ordered = Array(names)
        var requests: [NetlinkRequest] = []
        for n in ordered { requests.append(try LinkMessages.get(.name(n))) }
        let replies = await socket.transact(requests)
        var out: [String: Int32] = [:]
        var failures: [KernelError.BatchFailure] = []
        for (i, r) in replies.enumerated() {
            switch r {
            case .success(let msgs):
                if let l = msgs.lazy.compactMap(LinkMessages.decode).first { out[ordered[i]] = l.index }
            case .failure(let e):
                failures.append(.init(index: i, error: e))
            }
        }
        if failures.count == 1 { throw failures[0].error }
        if !failures.isEmpty { throw .batch(failures: failures, applied: 0) }
        return out
    }

    /// A dump, retried when the kernel flags it inconsistent (NLM_F_DUMP_INTR): the table changed mid-walk.
    private func dump(_ request: NetlinkRequest) async throws(KernelError) -> [NetlinkMessage] {
        var attempt = 0
        while true {
            do {
                return try await socket.request(request)
            } catch .dumpInterrupted(let op) {
                attempt += 1
                if attempt >= 5 { throw .dumpInterrupted(operation: op) }
            }
        }
    }

    static func collect(_ results: [Result<[NetlinkMessage], KernelError>]) throws(KernelError) {
        var failures: [KernelError.BatchFailure] = []
        for (i, r) in results.enumerated() {
            if case .failure(let e) = r { failures.append(.init(index: i, error: e)) }
        }
        if failures.isEmpty { return }
        if results.count == 1 { throw failures[0].error }
        throw .batch(failures: failures, applied: results.count - failures.count)
    }
}

extension Optional {
    func asyncMap<U>(_ f: (Wrapped) async throws(KernelError) -> U) async throws(KernelError) -> U? {
        switch self {
        case .some(let w): return try await f(w)
        case .none: return nil
        }
    }
}
