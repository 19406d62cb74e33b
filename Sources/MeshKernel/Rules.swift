import CNetlink
#if canImport(Glibc)
    import Glibc
#endif

/// A policy-routing rule that sends matching packets to a table, as in
/// `ip rule add pref 1000 from 10.255.0.11 fwmark 0x40000001 lookup 1073741825`.
/// Rules are told apart by what they match and their preference: two rules with the same
/// preference and selectors are the same rule to meshd (the kernel refuses the second add).
public struct FIBRule: Sendable, Hashable, Codable {
    public var family: Int32
    public var priority: UInt32
    /// Packets from this prefix only; nil: from anywhere.
    public var source: IPPrefix?
    /// `fwmark value/mask`; nil: any mark.
    public var mark: UInt32?
    public var markMask: UInt32?
    public var table: UInt32
    /// FRA_PROTOCOL: meshd's rules carry `Route.meshdProtocol`, so a read tells them from others.
    public var proto: UInt8

    public init(
        family: Int32 = AF_INET, priority: UInt32, source: IPPrefix? = nil, mark: UInt32? = nil, markMask: UInt32? = nil,
        table: UInt32, proto: UInt8 = Route.meshdProtocol
    ) {
        self.family = source.map { $0.address.isIPv4 ? AF_INET : AF_INET6 } ?? family
        self.priority = priority
        self.source = source?.network
        self.mark = mark
        self.markMask = mark == nil ? nil : (markMask ?? 0xffff_ffff)
        self.table = table
        self.proto = proto
    }

    public var description: String {
        var s = "pref \(priority)"
        if let source { s += " from \(source)" }
        if let mark { s += " fwmark 0x\(String(mark, radix: 16))/0x\(String(markMask ?? 0xffff_ffff, radix: 16))" }
        return s + " lookup \(table)"
    }
}

enum RuleMessages {
    static func header(family: UInt8, srcLength: Int, table: UInt32) -> fib_rule_hdr {
        var h = fib_rule_hdr()
        h.family = family
        h.src_len = UInt8(srcLength)
        h.table = table < 256 ? UInt8(table) : UInt8(RT_TABLE_UNSPEC.rawValue)
        h.action = UInt8(FR_ACT_TO_TBL)
        return h
    }

    /// `.add` or `.delete`: rules have no replace (the kernel would add a duplicate).
    static func change(_ verb: NetlinkVerb, _ r: FIBRule) throws(KernelError) -> NetlinkRequest {
        guard verb == .add || verb == .delete else {
            throw .invalidArgument("ip rule \(verb.word): rules are only added or deleted")
        }
        let b = RequestBuilder(
            type: Int(verb == .delete ? RTM_DELRULE : RTM_NEWRULE), verb: verb, operation: "ip rule \(verb.word) \(r.description)")
        b.header(header(family: UInt8(r.family), srcLength: r.source?.length ?? 0, table: r.table))
        b.put(Int(FRA_PRIORITY), u32: r.priority)
        if let s = r.source { b.put(Int(FRA_SRC), address: s.address) }
        if let m = r.mark {
            b.put(Int(FRA_FWMARK), u32: m)
            b.put(Int(FRA_FWMASK), u32: r.markMask ?? 0xffff_ffff)
        }
        b.put(Int(FRA_TABLE), u32: r.table)
        if verb != .delete { b.put(Int(FRA_PROTOCOL), u8: r.proto) }
        return try b.finish()
    }

    static func dump(family: UInt8) throws(KernelError) -> NetlinkRequest {
        let b = RequestBuilder(type: Int(RTM_GETRULE), verb: .dump, operation: "ip rule show")
        var h = fib_rule_hdr()
        h.family = family
        b.header(h)
        return try b.finish()
    }

    /// Rules that send to a table; others (blackhole, goto, nop) are not meshd's and are skipped.
    static func decode(_ m: NetlinkMessage) -> FIBRule? {
        guard Int(m.type) == Int(RTM_NEWRULE), m.payload.count >= 12 else { return nil }
        let p = m.payload
        let family = p[0], srcLen = Int(p[2]), table8 = p[4], action = p[7]
        guard action == UInt8(FR_ACT_TO_TBL) else { return nil }
        let a = NetlinkAttributes(p.dropFirst(12))
        var source: IPPrefix?
        if let s = a.address(Int(FRA_SRC)) { source = IPPrefix(address: s, length: srcLen) }
        let mark = a.u32(Int(FRA_FWMARK))
        return FIBRule(
            family: Int32(family), priority: a.u32(Int(FRA_PRIORITY)) ?? 0, source: source, mark: mark,
            markMask: mark == nil ? nil : a.u32(Int(FRA_FWMASK)),
            table: a.u32(Int(FRA_TABLE)) ?? UInt32(table8), proto: a.u8(Int(FRA_PROTOCOL)) ?? 0)
    }
}
