import CNetlink
#if canImport(Glibc)
    import Glibc
#endif

/// A device named by name or by index. Verbs resolve names to indexes once per call.
public enum LinkRef: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    case name(String)
    case index(Int32)
    public init(stringLiteral value: String) { self = .name(value) }
    public var description: String {
        switch self {
        case .name(let n): return n
        case .index(let i): return "ifindex \(i)"
        }
    }
}

/// VXLAN parameters as in `ip link add … type vxlan id V local A dstport P nolearning`.
public struct VXLANAttributes: Sendable, Hashable, Codable {
    public var vni: UInt32
    public var local: IPAddress?
    public var port: UInt16
    public var learning: Bool
    public var proxy: Bool
    /// nil = inherit (the kernel's default, shown by ip as "ttl auto").
    public var ttl: UInt8?
    /// Underlay device index (`dev …`).
    public var underlayIndex: Int32?

    public init(
        vni: UInt32, local: IPAddress? = nil, port: UInt16 = 4789, learning: Bool = false,
        proxy: Bool = false, ttl: UInt8? = nil, underlayIndex: Int32? = nil
    ) {
        self.vni = vni
        self.local = local
        self.port = port
        self.learning = learning
        self.proxy = proxy
        self.ttl = ttl
        self.underlayIndex = underlayIndex
    }
}

public enum LinkKind: Sendable {
    case vxlan(VXLANAttributes)
    case bridge
    case dummy
    /// A veth pair; the peer is created directly in `peerNamespace` when given.
    case veth(peerName: String, peerNamespace: NetworkNamespace?)

    var kindName: String {
        switch self {
        case .vxlan: return "vxlan"
        case .bridge: return "bridge"
        case .dummy: return "dummy"
        case .veth: return "veth"
        }
    }
}

/// What `linkAdd` creates.
public struct LinkSpec: Sendable {
    public var name: String
    public var kind: LinkKind
    public var mtu: UInt32?
    public var mac: MACAddress?
    public var master: LinkRef?
    public var up: Bool
    /// Create the link directly in another namespace (IFLA_NET_NS_FD).
    public var namespace: NetworkNamespace?

    public init(
        name: String, kind: LinkKind, mtu: UInt32? = nil, mac: MACAddress? = nil,
        master: LinkRef? = nil, up: Bool = false, namespace: NetworkNamespace? = nil
    ) {
        self.name = name
        self.kind = kind
        self.mtu = mtu
        self.mac = mac
        self.master = master
        self.up = up
        self.namespace = namespace
    }
}

/// What `linkSet` changes; nil fields are left alone.
public struct LinkChange: Sendable {
    public var up: Bool?
    public var mtu: UInt32?
    public var mac: MACAddress?
    /// `.index(0)` detaches from the current master (`nomaster`).
    public var master: LinkRef?
    public var name: String?
    public var namespace: NetworkNamespace?

    public init(
        up: Bool? = nil, mtu: UInt32? = nil, mac: MACAddress? = nil, master: LinkRef? = nil,
        name: String? = nil, namespace: NetworkNamespace? = nil
    ) {
        self.up = up
        self.mtu = mtu
        self.mac = mac
        self.master = master
        self.name = name
        self.namespace = namespace
    }
}

/// A link as the kernel reports it.
public struct Link: Sendable, Hashable, Codable {
    public var index: Int32
    public var name: String
    /// IFLA_INFO_KIND ("vxlan", "veth", "bridge", …); nil for devices without one (lo, physical).
    public var kind: String?
    public var mtu: UInt32?
    public var mac: MACAddress?
    public var isUp: Bool
    public var operState: UInt8?
    public var masterIndex: Int32?
    /// IFLA_LINK: for a veth, the peer's index (in its namespace).
    public var parentIndex: Int32?
    public var vxlan: VXLANAttributes?

    public var operStateName: String {
        guard let operState else { return "UNKNOWN" }
        var buf = [CChar](repeating: 0, count: 32)
        guard let s = rtnl_link_operstate2str(operState, &buf, buf.count) else { return "UNKNOWN" }
        return String(cString: s).uppercased()  // iproute2 spells them in capitals
    }
}

enum LinkMessages {
    static func validateName(_ name: String) throws(KernelError) {
        // IFNAMSIZ is 16 with the NUL; '/' and whitespace are refused by the kernel's dev_valid_name.
        // A NUL would end the C string early and name a different device; control characters never belong.
        guard !name.isEmpty, name.utf8.count < 16, name != ".", name != "..",
            !name.unicodeScalars.contains(where: {
                $0 == "/" || $0 == ":" || $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7f
            })
        else {
            throw .invalidArgument("interface name \"\(name)\" (1-15 characters, no '/', ':', spaces or control characters)")
        }
    }

    static func header(index: Int32 = 0, up: Bool? = nil) -> ifinfomsg {
        var h = ifinfomsg()
        h.ifi_family = UInt8(AF_UNSPEC)
        h.ifi_index = index
        if let up {
            h.ifi_change = UInt32(IFF_UP)
            h.ifi_flags = up ? UInt32(IFF_UP) : 0
        }
        return h
    }

    static func add(_ spec: LinkSpec, masterIndex: Int32?, verb: NetlinkVerb = .add) throws(KernelError) -> NetlinkRequest {
        try validateName(spec.name)
        if case .veth(let peer, _) = spec.kind { try validateName(peer) }
        let b = RequestBuilder(type: Int(RTM_NEWLINK), verb: verb, operation: "ip link add \(spec.name) type \(spec.kind.kindName)")
        b.header(header(up: spec.up ? true : nil))
        b.put(Int(IFLA_IFNAME), string: spec.name)
        if let mtu = spec.mtu { b.put(Int(IFLA_MTU), u32: mtu) }
        if let mac = spec.mac { b.put(Int(IFLA_ADDRESS), mac: mac) }
        if let masterIndex { b.put(Int(IFLA_MASTER), u32: UInt32(bitPattern: masterIndex)) }
        if let ns = spec.namespace { b.put(Int(IFLA_NET_NS_FD), u32: UInt32(bitPattern: ns.fd)) }
        b.nest(Int(IFLA_LINKINFO)) {
            b.put(Int(IFLA_INFO_KIND), string: spec.kind.kindName)
            switch spec.kind {
            case .vxlan(let v):
                b.nest(Int(IFLA_INFO_DATA)) {
                    b.put(Int(IFLA_VXLAN_ID), u32: v.vni)
                    if let local = v.local {
                        b.put(Int(local.isIPv4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6), address: local)
                    }
                    b.put(Int(IFLA_VXLAN_PORT), be16: v.port)
                    b.put(Int(IFLA_VXLAN_LEARNING), u8: v.learning ? 1 : 0)
                    b.put(Int(IFLA_VXLAN_PROXY), u8: v.proxy ? 1 : 0)
                    if let ttl = v.ttl { b.put(Int(IFLA_VXLAN_TTL), u8: ttl) }
                    if let dev = v.underlayIndex { b.put(Int(IFLA_VXLAN_LINK), u32: UInt32(bitPattern: dev)) }
                }
            case .veth(let peer, let peerNS):
                b.nest(Int(IFLA_INFO_DATA)) {
                    b.nest(Int(VETH_INFO_PEER)) {
                        b.header(header())
                        b.put(Int(IFLA_IFNAME), string: peer)
                        if let mtu = spec.mtu { b.put(Int(IFLA_MTU), u32: mtu) }
                        if let ns = peerNS { b.put(Int(IFLA_NET_NS_FD), u32: UInt32(bitPattern: ns.fd)) }
                    }
                }
            case .bridge, .dummy:
                break
            }
        }
        return try b.finish()
    }

    static func delete(index: Int32, label: String) throws(KernelError) -> NetlinkRequest {
        let b = RequestBuilder(type: Int(RTM_DELLINK), verb: .delete, operation: "ip link del \(label)")
        b.header(header(index: index))
        return try b.finish()
    }

    static func get(_ ref: LinkRef) throws(KernelError) -> NetlinkRequest {
        let b = RequestBuilder(type: Int(RTM_GETLINK), verb: .get, operation: "ip link show \(ref)")
        switch ref {
        case .index(let i):
            b.header(header(index: i))
        case .name(let n):
            try validateName(n)
            b.header(header())
            b.put(Int(IFLA_IFNAME), string: n)
        }
        return try b.finish()
    }

    static func dump() throws(KernelError) -> NetlinkRequest {
        let b = RequestBuilder(type: Int(RTM_GETLINK), verb: .dump, operation: "ip link show")
        b.header(header())
        return try b.finish()
    }

    static func set(index: Int32, label: String, _ c: LinkChange, masterIndex: Int32?) throws(KernelError) -> NetlinkRequest {
        if let n = c.name { try validateName(n) }
        let b = RequestBuilder(type: Int(RTM_NEWLINK), verb: .change, operation: "ip link set \(label)")
        b.header(header(index: index, up: c.up))
        if let n = c.name { b.put(Int(IFLA_IFNAME), string: n) }
        if let mtu = c.mtu { b.put(Int(IFLA_MTU), u32: mtu) }
        if let mac = c.mac { b.put(Int(IFLA_ADDRESS), mac: mac) }
        if let masterIndex { b.put(Int(IFLA_MASTER), u32: UInt32(bitPattern: masterIndex)) }
        if let ns = c.namespace { b.put(Int(IFLA_NET_NS_FD), u32: UInt32(bitPattern: ns.fd)) }
        return try b.finish()
    }

    static func decode(_ m: NetlinkMessage) -> Link? {
        guard Int(m.type) == Int(RTM_NEWLINK), m.payload.count >= 16 else { return nil }
        var r = ByteReader(m.payload)
        r.skip(4)
        let index = r.i32()
        let flags = r.u32()
        let a = NetlinkAttributes(m.payload.dropFirst(16))
        var link = Link(
            index: index, name: a.string(Int(IFLA_IFNAME)) ?? "",
            kind: nil, mtu: a.u32(Int(IFLA_MTU)), mac: a.mac(Int(IFLA_ADDRESS)),
            isUp: flags & UInt32(IFF_UP) != 0, operState: a.u8(Int(IFLA_OPERSTATE)),
            masterIndex: a.u32(Int(IFLA_MASTER)).map { Int32(bitPattern: $0) },
            parentIndex: a.u32(Int(IFLA_LINK)).map { Int32(bitPattern: $0) }, vxlan: nil)
        if let info = a.nested(Int(IFLA_LINKINFO)) {
            link.kind = info.string(Int(IFLA_INFO_KIND))
            if link.kind == "vxlan", let d = info.nested(Int(IFLA_INFO_DATA)) {
                link.vxlan = VXLANAttributes(
                    vni: d.u32(Int(IFLA_VXLAN_ID)) ?? 0,
                    local: d.address(Int(IFLA_VXLAN_LOCAL)) ?? d.address(Int(IFLA_VXLAN_LOCAL6)),
                    port: d.be16(Int(IFLA_VXLAN_PORT)) ?? 0,
                    learning: d.u8(Int(IFLA_VXLAN_LEARNING)).map { $0 != 0 } ?? false,
                    proxy: d.u8(Int(IFLA_VXLAN_PROXY)).map { $0 != 0 } ?? false,
                    ttl: d.u8(Int(IFLA_VXLAN_TTL)).flatMap { $0 == 0 ? nil : $0 },
                    underlayIndex: d.u32(Int(IFLA_VXLAN_LINK)).map { Int32(bitPattern: $0) })
            }
        }
        return link
    }
}
