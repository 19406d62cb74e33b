import CNetlink
#if canImport(Glibc)
    import Glibc
#endif

/// A neighbour entry, as in `ip neigh replace 10.0.0.3 lladdr 02:… dev vxlan0 nud permanent`.
public struct Neighbor: Sendable, Hashable, Codable {
    public var device: LinkRef
    public var address: IPAddress
    public var mac: MACAddress?
    /// NUD_* bits; meshd writes NUD_PERMANENT.
    public var state: UInt16

    public static let permanent = UInt16(NUD_PERMANENT)

    public init(device: LinkRef, address: IPAddress, mac: MACAddress?, state: UInt16 = Neighbor.permanent) {
        self.device = device
        self.address = address
        self.mac = mac
        self.state = state
    }
    public var isPermanent: Bool { state & Self.permanent != 0 }
}

/// A bridge forwarding entry on a VXLAN device (`bridge fdb append MAC dev vxlan0 dst IP self permanent`).
public struct FDBEntry: Sendable, Hashable, Codable {
    public var device: LinkRef
    public var mac: MACAddress
    /// Remote VTEP address (NDA_DST); nil for a local entry.
    public var destination: IPAddress?
    public var vni: UInt32?
    public var port: UInt16?
    public var state: UInt16
    /// NTF_* bits; meshd's entries are NTF_SELF (in the VXLAN device's own table).
    public var flags: UInt8

    public static let selfFlag = UInt8(NTF_SELF)

    public init(
        device: LinkRef, mac: MACAddress, destination: IPAddress?, vni: UInt32? = nil, port: UInt16? = nil,
        state: UInt16 = Neighbor.permanent, flags: UInt8 = FDBEntry.selfFlag
    ) {
        self.device = device
        self.mac = mac
        self.destination = destination
        self.vni = vni
        self.port = port
        self.state = state
        self.flags = flags
    }
}

enum NeighbourMessages {
    static func header(family: UInt8, index: Int32, state: UInt16 = 0, flags: UInt8 = 0) -> ndmsg {
        var h = ndmsg()
        h.ndm_family = family
        h.ndm_ifindex = index
        h.ndm_state = state
        h.ndm_flags = flags
        return h
    }

    static func change(_ verb: NetlinkVerb, _ n: Neighbor, index: Int32) throws(KernelError) -> NetlinkRequest {
        let isDelete = verb == .delete
        if !isDelete && n.mac == nil { throw .invalidArgument("neighbour \(n.address) needs a lladdr") }
        let b = RequestBuilder(
            type: Int(isDelete ? RTM_DELNEIGH : RTM_NEWNEIGH), verb: verb,
            operation: "ip neigh \(verb.word) \(n.address)\(n.mac.map { isDelete ? "" : " lladdr \($0)" } ?? "") dev \(n.device)")
        b.header(header(family: n.address.family, index: index, state: isDelete ? 0 : n.state))
        b.put(Int(NDA_DST), address: n.address)
        if let mac = n.mac, !isDelete { b.put(Int(NDA_LLADDR), mac: mac) }
        return try b.finish()
    }

    static func change(_ verb: NetlinkVerb, _ e: FDBEntry, index: Int32) throws(KernelError) -> NetlinkRequest {
        let isDelete = verb == .delete
        let b = RequestBuilder(
            type: Int(isDelete ? RTM_DELNEIGH : RTM_NEWNEIGH), verb: verb,
            operation: "bridge fdb \(verb.word) \(e.mac) dev \(e.device)\(e.destination.map { " dst \($0)" } ?? "")")
        b.header(header(family: UInt8(AF_BRIDGE), index: index, state: e.state, flags: e.flags))
        b.put(Int(NDA_LLADDR), mac: e.mac)
        if let d = e.destination { b.put(Int(NDA_DST), address: d) }
        if let v = e.vni { b.put(Int(NDA_VNI), u32: v) }
        if let p = e.port { b.put(Int(NDA_PORT), be16: p) }
        return try b.finish()
    }

    /// Filtered by device in the kernel (NDA_IFINDEX under strict checking).
    static func dump(family: UInt8, index: Int32?) throws(KernelError) -> NetlinkRequest {
        let b = RequestBuilder(
            type: Int(RTM_GETNEIGH), verb: .dump,
            operation: family == UInt8(AF_BRIDGE) ? "bridge fdb show" : "ip neigh show")
        b.header(header(family: family, index: 0))
        if let index { b.put(Int(NDA_IFINDEX), u32: UInt32(bitPattern: index)) }
        return try b.finish()
    }

    struct Raw {
        var family: UInt8, index: Int32, state: UInt16, flags: UInt8
        var attrs: NetlinkAttributes
    }

    static func raw(_ m: NetlinkMessage) -> Raw? {
        guard Int(m.type) == Int(RTM_NEWNEIGH) || Int(m.type) == Int(RTM_DELNEIGH), m.payload.count >= 12 else { return nil }
        var r = ByteReader(m.payload)
        r.skip(4)
        let index = r.i32(), state = r.u16(), flags = r.u8()
        return Raw(family: m.payload[0], index: index, state: state, flags: flags, attrs: NetlinkAttributes(m.payload.dropFirst(12)))
    }

    static func decodeNeighbor(_ m: NetlinkMessage) -> Neighbor? {
        guard let r = raw(m), r.family != UInt8(AF_BRIDGE), let dst = r.attrs.address(Int(NDA_DST)) else { return nil }
        return Neighbor(device: .index(r.index), address: dst, mac: r.attrs.mac(Int(NDA_LLADDR)), state: r.state)
    }

    static func decodeFDB(_ m: NetlinkMessage) -> FDBEntry? {
        guard let r = raw(m), r.family == UInt8(AF_BRIDGE), let mac = r.attrs.mac(Int(NDA_LLADDR)) else { return nil }
        return FDBEntry(
            device: .index(r.index), mac: mac, destination: r.attrs.address(Int(NDA_DST)),
            vni: r.attrs.u32(Int(NDA_VNI)), port: r.attrs.be16(Int(NDA_PORT)), state: r.state, flags: r.flags)
    }
}
