/// nf_tables expressions, one case per kernel expression the dataplane uses, plus the
/// composite helpers (`match`, `load`, `vmap`, `dnatMap`) that expand into the sequences nft
/// itself would generate. Registers are the 32-bit ones (NFT_REG32_00 ... _15), so a
/// concatenation of N fields occupies N consecutive registers.

public struct NFTRegister: Sendable, Hashable {
    public let raw: UInt32
    /// The verdict register: a lookup into it makes a verdict map.
    public static let verdict = NFTRegister(raw: 0)
    public static func r(_ i: Int) -> NFTRegister {
        precondition((0..<16).contains(i), "nftables has 16 32-bit registers")
        return NFTRegister(raw: 8 + UInt32(i))
    }
    func advanced(by n: Int) -> NFTRegister { NFTRegister(raw: raw + UInt32(n)) }
}

public enum NFTPayloadBase: UInt32, Sendable { case link = 0, network = 1, transport = 2 }

public enum NFTMetaKey: UInt32, Sendable {
    case length = 0, proto = 1, mark = 3, iif = 4, oif = 5, iifname = 6, oifname = 7
    case nfproto = 15, l4proto = 16
    /// 1 when the packet was decrypted by IPsec on its way in (`meta secpath exists`), else 0.
    case secpath = 25
}

/// What nft's `rt` expression loads from the packet's route (`enum nft_rt_keys`).
public enum NFTRouteKey: UInt32, Sendable {
    /// 1 when the route sends the packet through an IPsec transform (`rt ipsec exists`): on
    /// output, whether an XFRM policy with a state will encrypt it.
    case ipsec = 4
}

public enum NFTCTKey: UInt32, Sendable {
    case state = 0, direction = 1, status = 2, mark = 3
}

public enum NFTCmpOp: UInt32, Sendable { case eq = 0, neq = 1, lt = 2, lte = 3, gt = 4, gte = 5 }

public enum NFTNATKind: UInt32, Sendable { case snat = 0, dnat = 1 }

public struct NFTNATFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    // linux/netfilter/nf_nat.h
    public static let mapIPs = NFTNATFlags(rawValue: 1 << 0)
    public static let protoSpecified = NFTNATFlags(rawValue: 1 << 1)
    public static let random = NFTNATFlags(rawValue: 1 << 2)
    public static let persistent = NFTNATFlags(rawValue: 1 << 3)
    public static let fullyRandom = NFTNATFlags(rawValue: 1 << 4)
}

public enum NFTExpr: Sendable, Equatable {
    case payload(NFTPayloadBase, offset: UInt32, length: UInt32, into: NFTRegister)
    case meta(NFTMetaKey, into: NFTRegister)
    case metaSet(NFTMetaKey, from: NFTRegister)
    case ct(NFTCTKey, into: NFTRegister)
    /// `ct mark set <register>`: stores a value in the packet's connection.
    case ctSet(NFTCTKey, from: NFTRegister)
    case cmp(NFTCmpOp, NFTRegister, NFTValue)
    /// dst = (src & mask) ^ xor over `mask.bytes.count` bytes.
    case bitwise(from: NFTRegister, into: NFTRegister, mask: NFTValue, xor: NFTValue)
    case immediate(into: NFTRegister, NFTValue)
    case verdict(NFTVerdict)
    case counter
    /// Set membership (no `into`), a map (into a data register) or a verdict map (into `.verdict`).
    case lookup(set: String, from: NFTRegister, into: NFTRegister?, invert: Bool)
    case numgen(random: Bool, modulus: UInt32, offset: UInt32, into: NFTRegister)
    case jhash(from: NFTRegister, length: UInt32, modulus: UInt32, seed: UInt32, offset: UInt32, into: NFTRegister)
    case nat(NFTNATKind, family: NFTFamily, address: NFTRegister?, port: NFTRegister?, flags: NFTNATFlags)
    case masquerade(port: NFTRegister?, flags: NFTNATFlags)
    /// A routing lookup (nft's `fib`): `result` is NFT_FIB_RESULT_*, `flags` NFTA_FIB_F_*.
    case fib(result: UInt32, flags: UInt32, into: NFTRegister)
    /// A property of the packet's route (nft's `rt`).
    case rt(NFTRouteKey, into: NFTRegister)

    var largestValue: Int {
        switch self {
        case .cmp(_, _, let v), .immediate(_, let v): v.bytes.count
        case .bitwise(_, _, let m, let x): max(m.bytes.count, x.bytes.count)
        default: 0
        }
    }

    /// Set and chain names this expression refers to, checked before encoding.
    var names: [String] {
        switch self {
        case .lookup(let set, _, _, _): [set]
        case .verdict(let v): v.chain.map { [$0] } ?? []
        default: []
        }
    }

    var kernelName: String {
        switch self {
        case .payload: "payload"
        case .meta, .metaSet: "meta"
        case .ct, .ctSet: "ct"
        case .cmp: "cmp"
        case .bitwise: "bitwise"
        case .immediate, .verdict: "immediate"
        case .counter: "counter"
        case .lookup: "lookup"
        case .numgen: "numgen"
        case .jhash: "hash"
        case .nat: "nat"
        case .masquerade: "masq"
        case .fib: "fib"
        case .rt: "rt"
        }
    }
}

/// Header fields the dataplane matches on, each knowing how it is loaded into a register.
public enum NFTField: Sendable, Equatable {
    case ipSaddr, ipDaddr, ip6Saddr, ip6Daddr
    /// The Ethernet source address (link-layer header; for packets that arrived on an Ethernet device).
    case etherSaddr
    /// Transport-header ports: valid for TCP, UDP and SCTP alike (nft's `th sport/dport`).
    case thSport, thDport
    case l4proto, mark, iifname, oifname
    case ctState, ctMark

    public var length: Int {
        switch self {
        case .ipSaddr, .ipDaddr: 4
        case .ip6Saddr, .ip6Daddr: 16
        case .etherSaddr: 6
        case .thSport, .thDport: 2
        case .l4proto: 1
        case .mark, .ctState, .ctMark: 4
        case .iifname, .oifname: 16
        }
    }

    func load(into r: NFTRegister) -> NFTExpr {
        switch self {
        case .ipSaddr: .payload(.network, offset: 12, length: 4, into: r)
        case .ipDaddr: .payload(.network, offset: 16, length: 4, into: r)
        case .ip6Saddr: .payload(.network, offset: 8, length: 16, into: r)
        case .ip6Daddr: .payload(.network, offset: 24, length: 16, into: r)
        case .etherSaddr: .payload(.link, offset: 6, length: 6, into: r)
        case .thSport: .payload(.transport, offset: 0, length: 2, into: r)
        case .thDport: .payload(.transport, offset: 2, length: 2, into: r)
        case .l4proto: .meta(.l4proto, into: r)
        case .mark: .meta(.mark, into: r)
        case .iifname: .meta(.iifname, into: r)
        case .oifname: .meta(.oifname, into: r)
        case .ctState: .ct(.state, into: r)
        case .ctMark: .ct(.mark, into: r)
        }
    }
}

/// Conntrack states as the `ct state` bitmask (nf_conntrack_common.h).
public struct NFTCTState: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let invalid = NFTCTState(rawValue: 1)
    public static let established = NFTCTState(rawValue: 2)
    public static let related = NFTCTState(rawValue: 4)
    public static let new = NFTCTState(rawValue: 8)
    public static let untracked = NFTCTState(rawValue: 64)
}

extension NFTExpr {
    /// `field == value` (or another comparison): load into register 0, compare.
    public static func match(_ field: NFTField, _ op: NFTCmpOp = .eq, _ value: NFTValue) -> [NFTExpr] {
        [field.load(into: .r(0)), .cmp(op, .r(0), value)]
    }

    /// `ct state { states }`: a bitmask test, as nft compiles it.
    public static func ctState(_ states: NFTCTState) -> [NFTExpr] {
        [
            .ct(.state, into: .r(0)),
            .bitwise(from: .r(0), into: .r(0), mask: .u32(states.rawValue), xor: .u32(0)),
            .cmp(.neq, .r(0), .u32(0)),
        ]
    }

    /// Loads fields into consecutive registers from `start`: a concatenation key.
    public static func load(_ fields: [NFTField], from start: Int = 0) -> [NFTExpr] {
        var out: [NFTExpr] = []
        var reg = NFTRegister.r(start)
        for f in fields {
            out.append(f.load(into: reg))
            reg = reg.advanced(by: (f.length + 3) / 4)
        }
        return out
    }

    /// `fields vmap @set`: dispatch on a concatenated key to the verdict stored in the map.
    public static func vmap(_ fields: [NFTField], _ set: String) -> [NFTExpr] {
        load(fields) + [.lookup(set: set, from: .r(0), into: .verdict, invert: false)]
    }

    /// `fields @set` (or `!= @set`): set membership.
    public static func inSet(_ fields: [NFTField], _ set: String, invert: Bool = false) -> [NFTExpr] {
        load(fields) + [.lookup(set: set, from: .r(0), into: nil, invert: invert)]
    }

    /// `dnat ip to numgen random mod N map @set` where the map's values are
    /// `ipv4_addr . inet_service`: picks backend `numgen` and rewrites address and port.
    public static func dnatNumgen(modulus: UInt32, map: String, family: NFTFamily = .ip) -> [NFTExpr] {
        [
            .numgen(random: true, modulus: modulus, offset: 0, into: .r(0)),
            .lookup(set: map, from: .r(0), into: .r(0), invert: false),
            .nat(.dnat, family: family, address: .r(0), port: .r(family == .ip6 ? 4 : 1), flags: [.protoSpecified]),
        ]
    }

    /// `dnat ip to jhash fields mod N map @set`: the same, but sticky per flow key (source affinity).
    public static func dnatJhash(
        _ fields: [NFTField], modulus: UInt32, seed: UInt32, map: String,
        family: NFTFamily = .ip
    ) -> [NFTExpr] {
        let len = fields.reduce(0) { $0 + ($1.length + 3) / 4 * 4 }
        return load(fields, from: 4)
            + [
                .jhash(from: .r(4), length: UInt32(len), modulus: modulus, seed: seed, offset: 0, into: .r(0)),
                .lookup(set: map, from: .r(0), into: .r(0), invert: false),
                .nat(.dnat, family: family, address: .r(0), port: .r(family == .ip6 ? 4 : 1), flags: [.protoSpecified]),
            ]
    }

    /// `dnat to addr[:port]` with constants.
    public static func dnat(to address: IPAddress, port: UInt16? = nil) -> [NFTExpr] {
        var out: [NFTExpr] = [.immediate(into: .r(0), .address(address))]
        if let port { out.append(.immediate(into: .r(4), .port(port))) }
        return out + [
            .nat(
                .dnat, family: address.isIPv4 ? .ip : .ip6, address: .r(0),
                port: port == nil ? nil : .r(4), flags: port == nil ? [] : [.protoSpecified])
        ]
    }

    /// `snat to addr[:port]` with constants.
    public static func snat(to address: IPAddress, port: UInt16? = nil) -> [NFTExpr] {
        var out: [NFTExpr] = [.immediate(into: .r(0), .address(address))]
        if let port { out.append(.immediate(into: .r(4), .port(port))) }
        return out + [
            .nat(
                .snat, family: address.isIPv4 ? .ip : .ip6, address: .r(0),
                port: port == nil ? nil : .r(4), flags: port == nil ? [] : [.protoSpecified])
        ]
    }

    /// `masquerade [to :port]`.
    public static func masquerade(port: UInt16? = nil) -> [NFTExpr] {
        guard let port else { return [.masquerade(port: nil, flags: [])] }
        return [.immediate(into: .r(0), .port(port)), .masquerade(port: .r(0), flags: [.protoSpecified])]
    }

    /// `fib daddr type local`: the packet is addressed to this host (Docker's `addrtype --dst-type LOCAL`).
    public static func daddrIsLocal(register: Int = 1) -> [NFTExpr] {
        // NFT_FIB_RESULT_ADDRTYPE = 3, NFTA_FIB_F_DADDR = 1 << 1; the result is an RTN_* in host order (RTN_LOCAL = 2).
        [.fib(result: 3, flags: 2, into: .r(register)), .cmp(.eq, .r(register), .u32(2))]
    }

    /// `meta mark set value`.
    public static func setMark(_ mark: UInt32) -> [NFTExpr] {
        [.immediate(into: .r(0), .u32(mark)), .metaSet(.mark, from: .r(0))]
    }
}
