import CNetlink
#if canImport(Glibc)
    import Glibc
#endif

/// Route and address scopes (rtm_scope / ifa_scope).
public enum RouteScope: UInt8, Sendable, Codable {
    case universe = 0, site = 200, link = 253, host = 254, nowhere = 255
}

/// An address on a device, as in `ip addr add 10.0.0.2/24 dev eth0`.
public struct InterfaceAddress: Sendable, Hashable, Codable {
    public var device: LinkRef
    public var prefix: IPPrefix
    public var scope: RouteScope
    public var label: String?
    /// IFA_F_NODAD: an IPv6 address usable at once, without duplicate-address detection's second
    /// or so of being tentative (meshd allocates addresses; a duplicate is its bug, not the wire's).
    public var noDAD = false
    // A request's detail, not part of what an address is when written down.
    private enum CodingKeys: String, CodingKey { case device, prefix, scope, label }

    public init(device: LinkRef, prefix: IPPrefix, scope: RouteScope = .universe, label: String? = nil, noDAD: Bool = false) {
        self.device = device
        self.prefix = prefix
        self.scope = scope
        self.label = label
        self.noDAD = noDAD
    }
}

extension LinkRef: Codable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int32.self) { self = .index(i) } else { self = .name(try c.decode(String.self)) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .name(let n): try c.encode(n)
        case .index(let i): try c.encode(i)
        }
    }
}

enum AddressMessages {
    static func header(
        family: UInt8, prefixLength: Int = 0, scope: RouteScope = .universe, index: Int32 = 0, flags: UInt8 = 0
    ) -> ifaddrmsg {
        var h = ifaddrmsg()
        h.ifa_family = family
        h.ifa_flags = flags
        h.ifa_prefixlen = UInt8(prefixLength)
        h.ifa_scope = scope.rawValue
        h.ifa_index = UInt32(bitPattern: index)
        return h
    }

    static func change(_ verb: NetlinkVerb, _ a: InterfaceAddress, index: Int32) throws(KernelError) -> NetlinkRequest {
        let isDelete = verb == .delete
        let b = RequestBuilder(
            type: Int(isDelete ? RTM_DELADDR : RTM_NEWADDR), verb: verb,
            operation: "ip addr \(isDelete ? "del" : "add") \(a.prefix) dev \(a.device)")
        b.header(
            header(
                family: a.prefix.address.family, prefixLength: a.prefix.length, scope: a.scope, index: index,
                flags: a.noDAD && !isDelete ? UInt8(IFA_F_NODAD) : 0))
        b.put(Int(IFA_LOCAL), address: a.prefix.address)
        b.put(Int(IFA_ADDRESS), address: a.prefix.address)
        if let label = a.label, !isDelete { b.put(Int(IFA_LABEL), string: label) }
        return try b.finish()
    }

    /// Strict checking lets the kernel filter by device, so listing one device never walks all of them.
    static func dump(family: UInt8, index: Int32?) throws(KernelError) -> NetlinkRequest {
        let b = RequestBuilder(type: Int(RTM_GETADDR), verb: .dump, operation: "ip addr show")
        b.header(header(family: family, index: index ?? 0))
        return try b.finish()
    }

    static func decode(_ m: NetlinkMessage) -> InterfaceAddress? {
        guard Int(m.type) == Int(RTM_NEWADDR), m.payload.count >= 8 else { return nil }
        let len = Int(m.payload[1]), scopeRaw = m.payload[3]
        var r = ByteReader(m.payload)
        r.skip(4)
        let index = Int32(bitPattern: r.u32())
        let a = NetlinkAttributes(m.payload.dropFirst(8))
        guard let addr = a.address(Int(IFA_LOCAL)) ?? a.address(Int(IFA_ADDRESS)),
            let prefix = IPPrefix(address: addr, length: len)
        else { return nil }
        return InterfaceAddress(
            device: .index(index), prefix: prefix,
            scope: RouteScope(rawValue: scopeRaw) ?? .universe, label: a.string(Int(IFA_LABEL)))
    }
}
