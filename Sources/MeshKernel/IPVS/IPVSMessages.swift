import CNetlink

/// Encoders and decoders for the IPVS generic netlink family. Requests are built with libnl
/// (genl header, nested IPVS_CMD_ATTR_SERVICE / _DEST); replies go through the pure decoder.
/// Ports are big-endian on the wire; addresses are 4 or 16 bytes.
enum IPVSMessages {
    static let version: UInt8 = 1  // IPVS_GENL_VERSION

    static func request(
        family: UInt16, _ cmd: Int, verb: NetlinkVerb, label: @autoclosure @escaping @Sendable () -> String,
        _ body: (RequestBuilder) -> Void = { _ in }
    ) throws(KernelError) -> NetlinkRequest {
        let b = RequestBuilder(type: Int(family), verb: verb, operation: label())
        b.header(genlmsghdr(cmd: UInt8(cmd), version: version, reserved: 0))
        body(b)
        return try b.finish()
    }

    static func putKey(_ b: RequestBuilder, _ key: IPVSServiceKey) {
        b.put(IPVS_SVC_ATTR_AF, u16: key.family)
        switch key {
        case .tuple(let proto, let address, let port):
            b.put(IPVS_SVC_ATTR_PROTOCOL, u16: proto.rawValue)
            b.put(IPVS_SVC_ATTR_ADDR, address: address)
            b.put(IPVS_SVC_ATTR_PORT, be16: port)
        case .fwmark(let mark, _):
            b.put(IPVS_SVC_ATTR_FWMARK, u32: mark)
        }
    }

    static func putService(_ b: RequestBuilder, _ s: IPVSService) {
        b.nest(IPVS_CMD_ATTR_SERVICE) {
            putKey(b, s.key)
            b.put(IPVS_SVC_ATTR_SCHED_NAME, string: s.scheduler)
            // struct ip_vs_flags { flags; mask }: the mask says which bits this message sets.
            var flags: [UInt8] = []
            withUnsafeBytes(of: s.flags.rawValue) { flags += $0 }
            withUnsafeBytes(of: UInt32.max) { flags += $0 }
            b.put(IPVS_SVC_ATTR_FLAGS, bytes: flags)
            b.put(IPVS_SVC_ATTR_TIMEOUT, u32: s.timeout)
            b.put(IPVS_SVC_ATTR_NETMASK, u32: netmask(bits: s.netmaskBits, v6: s.key.family == 10))
        }
    }

    /// IPv4 netmasks travel as a network-order mask; IPv6 ones as a prefix length.
    static func netmask(bits: Int, v6: Bool) -> UInt32 {
        if v6 { return UInt32(max(0, min(128, bits))) }
        let b = max(0, min(32, bits))
        return (b == 0 ? 0 : UInt32.max << (32 - b)).bigEndian
    }

    static func putDestination(_ b: RequestBuilder, _ d: IPVSDestination) {
        b.nest(IPVS_CMD_ATTR_DEST) {
            b.put(IPVS_DEST_ATTR_ADDR, address: d.address)
            b.put(IPVS_DEST_ATTR_PORT, be16: d.port)
            b.put(IPVS_DEST_ATTR_FWD_METHOD, u32: d.forwarding.raw)
            b.put(IPVS_DEST_ATTR_WEIGHT, u32: d.weight)
            b.put(IPVS_DEST_ATTR_U_THRESH, u32: d.upperThreshold)
            b.put(IPVS_DEST_ATTR_L_THRESH, u32: d.lowerThreshold)
            b.put(IPVS_DEST_ATTR_ADDR_FAMILY, u16: UInt16(d.address.family))
        }
    }

    static func encode(_ op: IPVSOperation, family: UInt16) throws(KernelError) -> NetlinkRequest {
        switch op {
        case .addService(let s):
            try validate(s)
            return try request(family: family, IPVS_CMD_NEW_SERVICE, verb: .add, label: "ipvsadm -A \(s.key) -s \(s.scheduler)") {
                putService($0, s)
            }
        case .updateService(let s):
            try validate(s)
            return try request(family: family, IPVS_CMD_SET_SERVICE, verb: .change, label: "ipvsadm -E \(s.key) -s \(s.scheduler)") {
                putService($0, s)
            }
        case .deleteService(let k):
            return try request(family: family, IPVS_CMD_DEL_SERVICE, verb: .delete, label: "ipvsadm -D \(k)") { b in
                b.nest(IPVS_CMD_ATTR_SERVICE) { putKey(b, k) }
            }
        case .addDestination(let k, let d):
            try validate(k, d)
            return try request(family: family, IPVS_CMD_NEW_DEST, verb: .add, label: "ipvsadm -a \(k) -r \(d.address):\(d.port)") { b in
                b.nest(IPVS_CMD_ATTR_SERVICE) { putKey(b, k) }
                putDestination(b, d)
            }
        case .updateDestination(let k, let d):
            try validate(k, d)
            return try request(
                family: family, IPVS_CMD_SET_DEST, verb: .change, label: "ipvsadm -e \(k) -r \(d.address):\(d.port) -w \(d.weight)"
            ) { b in
                b.nest(IPVS_CMD_ATTR_SERVICE) { putKey(b, k) }
                putDestination(b, d)
            }
        case .deleteDestination(let k, let a, let p):
            return try request(family: family, IPVS_CMD_DEL_DEST, verb: .delete, label: "ipvsadm -d \(k) -r \(a):\(p)") { b in
                b.nest(IPVS_CMD_ATTR_SERVICE) { putKey(b, k) }
                b.nest(IPVS_CMD_ATTR_DEST) {
                    b.put(IPVS_DEST_ATTR_ADDR, address: a)
                    b.put(IPVS_DEST_ATTR_PORT, be16: p)
                    b.put(IPVS_DEST_ATTR_ADDR_FAMILY, u16: UInt16(a.family))
                }
            }
        }
    }

    static func validate(_ s: IPVSService) throws(KernelError) {
        guard !s.scheduler.isEmpty, s.scheduler.utf8.count < 16, s.scheduler.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw .invalidArgument("IPVS scheduler name must be 1-15 printable characters: \(s.scheduler.debugDescription)")
        }
        if case .tuple(_, _, let port) = s.key, port == 0, !s.flags.contains(.persistent) {
            throw .invalidArgument("IPVS service \(s.key): port 0 is only allowed for persistent services")
        }
    }

    static func validate(_ k: IPVSServiceKey, _ d: IPVSDestination) throws(KernelError) {
        if case .tuple(_, let a, _) = k, a.isIPv4 != d.address.isIPv4, d.forwarding != .tunnel {
            throw .invalidArgument("IPVS service \(k): destination \(d.address) is another address family (only tunnels may mix)")
        }
    }

    // MARK: - decoding

    /// The genl header is 4 bytes; attributes follow.
    static func attributes(_ m: NetlinkMessage) -> NetlinkAttributes? {
        guard m.payload.count >= 4 else { return nil }
        return NetlinkAttributes(m.payload.dropFirst(4))
    }

    static func decodeKey(_ a: NetlinkAttributes) -> IPVSServiceKey? {
        guard let af = a.u16(IPVS_SVC_ATTR_AF) else { return nil }
        if let mark = a.u32(IPVS_SVC_ATTR_FWMARK), mark != 0 { return .fwmark(mark, ipv6: af == 10) }
        guard let protoRaw = a.u16(IPVS_SVC_ATTR_PROTOCOL), let proto = IPVSProtocol(rawValue: protoRaw),
            let raw = a[IPVS_SVC_ATTR_ADDR], let port = a.be16(IPVS_SVC_ATTR_PORT),
            let address = IPAddress(bytes: af == 2 ? Array(raw.prefix(4)) : raw)
        else { return nil }
        return .tuple(proto, address, port)
    }

    static func decodeService(_ m: NetlinkMessage) -> IPVSServiceEntry? {
        guard let top = attributes(m), let a = top.nested(IPVS_CMD_ATTR_SERVICE), let key = decodeKey(a) else { return nil }
        var flags: UInt32 = 0
        if let f = a[IPVS_SVC_ATTR_FLAGS], f.count >= 4 { flags = f.prefix(4).reversed().reduce(0) { $0 << 8 | UInt32($1) } }
        let mask = a.u32(IPVS_SVC_ATTR_NETMASK) ?? 0
        let bits = key.family == 10 ? Int(mask) : UInt32(bigEndian: mask).nonzeroBitCount
        // The kernel adds HASHED (0x2) to every listed service; it is state, not configuration.
        let s = IPVSService(
            key, scheduler: a.string(IPVS_SVC_ATTR_SCHED_NAME) ?? "",
            flags: IPVSServiceFlags(rawValue: flags & ~0x2), timeout: a.u32(IPVS_SVC_ATTR_TIMEOUT) ?? 0,
            netmaskBits: bits)
        return IPVSServiceEntry(service: s, stats: decodeStats(a.nested(IPVS_SVC_ATTR_STATS64), a.nested(IPVS_SVC_ATTR_STATS)))
    }

    static func decodeDestination(_ m: NetlinkMessage) -> IPVSDestinationEntry? {
        guard let top = attributes(m), let a = top.nested(IPVS_CMD_ATTR_DEST), let raw = a[IPVS_DEST_ATTR_ADDR],
            let port = a.be16(IPVS_DEST_ATTR_PORT)
        else { return nil }
        let af = a.u16(IPVS_DEST_ATTR_ADDR_FAMILY) ?? 2
        guard let address = IPAddress(bytes: af == 2 ? Array(raw.prefix(4)) : raw) else { return nil }
        let d = IPVSDestination(
            address, port: port, forwarding: .from(a.u32(IPVS_DEST_ATTR_FWD_METHOD) ?? 0),
            weight: a.u32(IPVS_DEST_ATTR_WEIGHT) ?? 0, upperThreshold: a.u32(IPVS_DEST_ATTR_U_THRESH) ?? 0,
            lowerThreshold: a.u32(IPVS_DEST_ATTR_L_THRESH) ?? 0)
        return IPVSDestinationEntry(
            destination: d, activeConnections: a.u32(IPVS_DEST_ATTR_ACTIVE_CONNS) ?? 0,
            inactiveConnections: a.u32(IPVS_DEST_ATTR_INACT_CONNS) ?? 0,
            persistentConnections: a.u32(IPVS_DEST_ATTR_PERSIST_CONNS) ?? 0,
            stats: decodeStats(a.nested(IPVS_DEST_ATTR_STATS64), a.nested(IPVS_DEST_ATTR_STATS)))
    }

    /// STATS64 carries u64 counters; the older STATS has u32 ones except the byte counts.
    static func decodeStats(_ s64: NetlinkAttributes?, _ s32: NetlinkAttributes?) -> IPVSStats {
        var st = IPVSStats()
        if let s = s64 {
            st.connections = s.u64(IPVS_STATS_ATTR_CONNS) ?? 0
            st.inPackets = s.u64(IPVS_STATS_ATTR_INPKTS) ?? 0
            st.outPackets = s.u64(IPVS_STATS_ATTR_OUTPKTS) ?? 0
            st.inBytes = s.u64(IPVS_STATS_ATTR_INBYTES) ?? 0
            st.outBytes = s.u64(IPVS_STATS_ATTR_OUTBYTES) ?? 0
            st.connectionsPerSecond = s.u64(IPVS_STATS_ATTR_CPS) ?? 0
        } else if let s = s32 {
            st.connections = UInt64(s.u32(IPVS_STATS_ATTR_CONNS) ?? 0)
            st.inPackets = UInt64(s.u32(IPVS_STATS_ATTR_INPKTS) ?? 0)
            st.outPackets = UInt64(s.u32(IPVS_STATS_ATTR_OUTPKTS) ?? 0)
            st.inBytes = s.u64(IPVS_STATS_ATTR_INBYTES) ?? 0
            st.outBytes = s.u64(IPVS_STATS_ATTR_OUTBYTES) ?? 0
            st.connectionsPerSecond = UInt64(s.u32(IPVS_STATS_ATTR_CPS) ?? 0)
        }
        return st
    }
}

extension NetlinkAttributes {
    /// Host-order u64.
    func u64(_ t: Int) -> UInt64? {
        guard let v = self[t], v.count >= 8 else { return nil }
        return v.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}
