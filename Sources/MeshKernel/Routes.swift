import CNetlink
#if canImport(Glibc)
    import Glibc
#endif

/// A unicast route, as in `ip route add 10.0.0.0/24 via 10.1.0.1 dev eth0 onlink table 100`.
public struct Route: Sendable, Hashable, Codable {
    public var destination: IPPrefix
    public var gateway: IPAddress?
    public var device: LinkRef?
    public var table: UInt32
    /// nil: `link` without a gateway, `universe` with one (what iproute2 picks).
    public var scope: RouteScope?
    public var onlink: Bool
    public var metric: UInt32?
    public var preferredSource: IPAddress?
    /// RTPROT_*; meshd's own routes use `Route.meshdProtocol` so they can be told apart.
    public var proto: UInt8

    public static let mainTable: UInt32 = 254
    public static let meshdProtocol: UInt8 = 0x6d  // 'm'; shown by ip as "proto 109"

    public init(
        destination: IPPrefix, gateway: IPAddress? = nil, device: LinkRef? = nil, table: UInt32 = Route.mainTable,
        scope: RouteScope? = nil, onlink: Bool = false, metric: UInt32? = nil,
        preferredSource: IPAddress? = nil, proto: UInt8 = Route.meshdProtocol
    ) {
        self.destination = destination.network
        self.gateway = gateway
        self.device = device
        self.table = table
        self.scope = scope
        self.onlink = onlink
        self.metric = metric
        self.preferredSource = preferredSource
        self.proto = proto
    }

    public var effectiveScope: RouteScope { scope ?? (gateway == nil ? .link : .universe) }

    /// A default route (0.0.0.0/0 or ::/0) via `gateway`.
    public static func defaultRoute(via gateway: IPAddress, device: LinkRef? = nil, onlink: Bool = false) -> Route {
        let any: IPAddress = gateway.isIPv4 ? .v4(0) : .v6(0, 0)
        return Route(destination: IPPrefix(address: any, length: 0)!, gateway: gateway, device: device, onlink: onlink)
    }
}

enum RouteMessages {
    static func header(family: UInt8, dstLength: Int, table: UInt32, proto: UInt8, scope: RouteScope, onlink: Bool, type: UInt8) -> rtmsg {
        var h = rtmsg()
        h.rtm_family = family
        h.rtm_dst_len = UInt8(dstLength)
        h.rtm_table = table < 256 ? UInt8(table) : UInt8(RT_TABLE_UNSPEC.rawValue)
        h.rtm_protocol = proto
        h.rtm_scope = scope.rawValue
        h.rtm_type = type
        h.rtm_flags = onlink ? UInt32(RTNH_F_ONLINK) : 0
        return h
    }

    static func change(_ verb: NetlinkVerb, _ r: Route, deviceIndex: Int32?) throws(KernelError) -> NetlinkRequest {
        if let g = r.gateway, g.isIPv4 != r.destination.address.isIPv4 {
            throw .invalidArgument("route \(r.destination) via \(g): address families differ")
        }
        let isDelete = verb == .delete
        let label: @Sendable () -> String = {
            var op = "ip route \(verb.word) \(r.destination)"
            if let g = r.gateway { op += " via \(g)" }
            if let d = r.device { op += " dev \(d)" }
            if r.table != Route.mainTable { op += " table \(r.table)" }
            return op
        }
        let b = RequestBuilder(type: Int(isDelete ? RTM_DELROUTE : RTM_NEWROUTE), verb: verb, operation: label())
        // A delete matches any scope and protocol unless told otherwise, as `ip route del` does.
        b.header(
            header(
                family: r.destination.address.family, dstLength: r.destination.length, table: r.table,
                proto: isDelete ? 0 : r.proto, scope: isDelete ? .nowhere : r.effectiveScope,
                onlink: r.onlink, type: UInt8(RTN_UNICAST)))
        if r.destination.length > 0 { b.put(Int(RTA_DST.rawValue), address: r.destination.address) }
        if let g = r.gateway { b.put(Int(RTA_GATEWAY.rawValue), address: g) }
        if let deviceIndex { b.put(Int(RTA_OIF.rawValue), u32: UInt32(bitPattern: deviceIndex)) }
        if let m = r.metric { b.put(Int(RTA_PRIORITY.rawValue), u32: m) }
        if let s = r.preferredSource { b.put(Int(RTA_PREFSRC.rawValue), address: s) }
        b.put(Int(RTA_TABLE.rawValue), u32: r.table)
        return try b.finish()
    }

    static func dump(family: UInt8, table: UInt32?) throws(KernelError) -> NetlinkRequest {
        let b = RequestBuilder(type: Int(RTM_GETROUTE), verb: .dump, operation: "ip route show table \(table.map(String.init) ?? "all")")
        var h = rtmsg()
        h.rtm_family = family
        if let table, table < 256 { h.rtm_table = UInt8(table) }
        b.header(h)
        if let table { b.put(Int(RTA_TABLE.rawValue), u32: table) }
        return try b.finish()
    }

    static func decode(_ m: NetlinkMessage) -> Route? {
        guard Int(m.type) == Int(RTM_NEWROUTE), m.payload.count >= 12 else { return nil }
        let p = m.payload
        let family = p[0], dstLen = Int(p[1]), table8 = p[4], proto = p[5], scope = p[6], type = p[7]
        guard type == UInt8(RTN_UNICAST) else { return nil }
        var r = ByteReader(p)
        r.skip(8)
        let flags = r.u32()
        let a = NetlinkAttributes(p.dropFirst(12))
        let any: IPAddress = family == UInt8(AF_INET) ? .v4(0) : .v6(0, 0)
        guard let dst = IPPrefix(address: a.address(Int(RTA_DST.rawValue)) ?? any, length: dstLen) else { return nil }
        return Route(
            destination: dst, gateway: a.address(Int(RTA_GATEWAY.rawValue)),
            device: a.u32(Int(RTA_OIF.rawValue)).map { .index(Int32(bitPattern: $0)) },
            table: a.u32(Int(RTA_TABLE.rawValue)) ?? UInt32(table8),
            scope: RouteScope(rawValue: scope), onlink: flags & UInt32(RTNH_F_ONLINK) != 0,
            metric: a.u32(Int(RTA_PRIORITY.rawValue)), preferredSource: a.address(Int(RTA_PREFSRC.rawValue)),
            proto: proto)
    }
}
