import CNetlink
#if canImport(Glibc)
    import Glibc
#endif

/// IPVS over generic netlink, with ipvsadm's verbs. The family id is resolved once with
/// libnl-genl; every change after that is a pipelined request on the handle's own socket, so
/// 100,000 destinations cost about 100 system calls.
public final class IPVSHandle: Sendable {
    public let socket: NetlinkSocket
    public let family: UInt16

    /// Opens the handle inside `namespace` (IPVS state is per namespace), or in the caller's own.
    /// Fails with a libnl "object not found" error when the kernel has no IPVS.
    public init(namespace: NetworkNamespace? = nil) throws(KernelError) {
        var options = NetlinkSocket.Options()
        options.strictChecking = false
        if let namespace {
            socket = try namespace.openNetlink(protocol: NETLINK_GENERIC, options: options)
        } else {
            socket = try NetlinkSocket(protocol: NETLINK_GENERIC, options: options)
        }
        family = try socket.resolveGenericFamily("IPVS")
    }

    // MARK: services

    public func addService(_ s: IPVSService) async throws(KernelError) { try await apply([.addService(s)]) }
    public func updateService(_ s: IPVSService) async throws(KernelError) { try await apply([.updateService(s)]) }
    public func deleteService(_ k: IPVSServiceKey) async throws(KernelError) { try await apply([.deleteService(k)]) }

    public func addDestination(_ d: IPVSDestination, to k: IPVSServiceKey) async throws(KernelError) {
        try await apply([.addDestination(k, d)])
    }
    public func updateDestination(_ d: IPVSDestination, in k: IPVSServiceKey) async throws(KernelError) {
        try await apply([.updateDestination(k, d)])
    }
    public func deleteDestination(_ address: IPAddress, port: UInt16, from k: IPVSServiceKey) async throws(KernelError) {
        try await apply([.deleteDestination(k, address, port)])
    }

    /// Removes every service and destination (ipvsadm -C).
    public func flush() async throws(KernelError) {
        _ = try await socket.request(IPVSMessages.request(family: family, IPVS_CMD_FLUSH, verb: .change, label: "ipvsadm -C"))
    }

    /// Zeroes every counter (ipvsadm -Z).
    public func zero() async throws(KernelError) {
        _ = try await socket.request(IPVSMessages.request(family: family, IPVS_CMD_ZERO, verb: .change, label: "ipvsadm -Z"))
    }

    /// Applies every operation in one pipelined exchange. Like rtnetlink, IPVS has no
    /// transactions: on failure the rest still apply and the error lists each failure.
    public func apply(_ ops: [IPVSOperation]) async throws(KernelError) {
        if ops.isEmpty { return }
        var requests: [NetlinkRequest] = []
        requests.reserveCapacity(ops.count)
        for op in ops { requests.append(try IPVSMessages.encode(op, family: family)) }
        try NetlinkHandle.collect(await socket.transact(requests))
    }

    // MARK: reading

    public func listServices() async throws(KernelError) -> [IPVSServiceEntry] {
        let r = try IPVSMessages.request(family: family, IPVS_CMD_GET_SERVICE, verb: .dump, label: "ipvsadm -L")
        return try await socket.request(r).compactMap(IPVSMessages.decodeService)
    }

    public func getService(_ k: IPVSServiceKey) async throws(KernelError) -> IPVSServiceEntry? {
        let r = try IPVSMessages.request(family: family, IPVS_CMD_GET_SERVICE, verb: .get, label: "ipvsadm -L \(k)") { b in
            b.nest(IPVS_CMD_ATTR_SERVICE) { IPVSMessages.putKey(b, k) }
        }
        do {
            return try await socket.request(r).compactMap(IPVSMessages.decodeService).first
        } catch let e where e.errno?.rawValue == ESRCH {
            return nil
        }
    }

    public func listDestinations(_ k: IPVSServiceKey) async throws(KernelError) -> [IPVSDestinationEntry] {
        let r = try IPVSMessages.request(family: family, IPVS_CMD_GET_DEST, verb: .dump, label: "ipvsadm -L \(k)") { b in
            b.nest(IPVS_CMD_ATTR_SERVICE) { IPVSMessages.putKey(b, k) }
        }
        return try await socket.request(r).compactMap(IPVSMessages.decodeDestination)
    }

    public func timeouts() async throws(KernelError) -> IPVSTimeouts {
        let r = try IPVSMessages.request(family: family, IPVS_CMD_GET_CONFIG, verb: .get, label: "ipvsadm -L --timeout")
        guard let m = try await socket.request(r).first, let a = IPVSMessages.attributes(m) else {
            throw .malformedReply(operation: "ipvsadm -L --timeout", detail: "no config in the reply")
        }
        return IPVSTimeouts(
            tcp: a.u32(IPVS_CMD_ATTR_TIMEOUT_TCP) ?? 0, tcpFin: a.u32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN) ?? 0,
            udp: a.u32(IPVS_CMD_ATTR_TIMEOUT_UDP) ?? 0)
    }

    public func setTimeouts(_ t: IPVSTimeouts) async throws(KernelError) {
        let r = try IPVSMessages.request(
            family: family, IPVS_CMD_SET_CONFIG, verb: .change,
            label: "ipvsadm --set \(t.tcp) \(t.tcpFin) \(t.udp)"
        ) { b in
            b.put(IPVS_CMD_ATTR_TIMEOUT_TCP, u32: t.tcp)
            b.put(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, u32: t.tcpFin)
            b.put(IPVS_CMD_ATTR_TIMEOUT_UDP, u32: t.udp)
        }
        _ = try await socket.request(r)
    }
}
