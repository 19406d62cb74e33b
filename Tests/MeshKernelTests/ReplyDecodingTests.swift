// Decoding of kernel replies built by hand: family headers + attribute TLVs, wrapped with
// NetlinkMessage(...).encoded() where the wire form matters.
@testable import MeshKernel
import Testing

/// Hand-made replies shared with the fuzz suite as seeds.
enum Replies {
    static func ifinfomsg(index: Int32, flags: UInt32, change: UInt32 = 0) -> [UInt8] {
        [0, 0] + le16(1) + le32(index) + le32(flags) + le32(change)  // AF_UNSPEC, ARPHRD_ETHER
    }

    static let vxlanLink = NetlinkMessage(
        type: 16, flags: 0, seq: 1, pid: 0,
        payload:
            ifinfomsg(index: 7, flags: 0x1043)  // IFF_UP|IFF_BROADCAST|IFF_RUNNING|IFF_MULTICAST
            + tlv(3, string: "vxlan0")  // IFLA_IFNAME
            + tlv(4, u32: 1450)  // IFLA_MTU
            + tlv(1, [0x02, 0xab, 0xcd, 0x00, 0x00, 0x01])  // IFLA_ADDRESS
            + tlv(16, u8: 6)  // IFLA_OPERSTATE IF_OPER_UP
            + tlv(10, u32: 4)  // IFLA_MASTER
            + tlv(
                0x8000 | 18,  // IFLA_LINKINFO | NLA_F_NESTED
                tlv(1, string: "vxlan")  //   IFLA_INFO_KIND
                    + nest(
                        0x8000 | 2,  //   IFLA_INFO_DATA | NLA_F_NESTED
                        tlv(1, u32: 4097),  //     IFLA_VXLAN_ID
                        tlv(3, u32: 2),  //     IFLA_VXLAN_LINK
                        tlv(4, [198, 18, 0, 1]),  //     IFLA_VXLAN_LOCAL
                        tlv(5, u8: 0),  //     IFLA_VXLAN_TTL 0 = inherit
                        tlv(7, u8: 0),  //     IFLA_VXLAN_LEARNING
                        tlv(11, u8: 1),  //     IFLA_VXLAN_PROXY
                        tlv(15, be16(4789)))))  //     IFLA_VXLAN_PORT

    static let vethLink = NetlinkMessage(
        type: 16, flags: 0, seq: 0, pid: 0,
        payload:
            ifinfomsg(index: 12, flags: 0x1002)
            + tlv(3, string: "veth0") + tlv(5, u32: 13)  // IFLA_LINK = peer index
            + tlv(18, tlv(1, string: "veth")))

    static let address = NetlinkMessage(
        type: 20, flags: 2, seq: 9, pid: 0,
        payload: [2, 24, 0x80, 0, 3, 0, 0, 0]  // ifaddrmsg: AF_INET /24 IFA_F_PERMANENT universe idx 3
            + tlv(1, [10, 0, 0, 2]) + tlv(2, [10, 0, 0, 2])  // IFA_ADDRESS, IFA_LOCAL
            + tlv(3, string: "eth0") + tlv(8, u32: 0x80))  // IFA_LABEL, IFA_FLAGS

    static func rtmsg(family: UInt8, dstLen: UInt8, table: UInt8, proto: UInt8, scope: UInt8, type: UInt8, flags: UInt32) -> [UInt8] {
        [family, dstLen, 0, 0, table, proto, scope, type] + le32(flags)
    }

    static let route = NetlinkMessage(
        type: 24, flags: 2, seq: 0, pid: 0,
        payload:
            rtmsg(family: 2, dstLen: 24, table: 252, proto: 0x6d, scope: 0, type: 1, flags: 4)
            + tlv(15, u32: 1000)  // RTA_TABLE overrides rtm_table
            + tlv(1, [10, 10, 0, 0])  // RTA_DST
            + tlv(5, [10, 0, 0, 1])  // RTA_GATEWAY
            + tlv(4, u32: 3)  // RTA_OIF
            + tlv(6, u32: 20)  // RTA_PRIORITY
            + tlv(7, [10, 0, 0, 2]))  // RTA_PREFSRC

    static let neighbour = NetlinkMessage(
        type: 28, flags: 0, seq: 0, pid: 0,
        payload: [2, 0, 0, 0] + le32(Int32(4)) + le16(0x80) + [0, 1]  // ndmsg AF_INET idx 4 PERMANENT
            + tlv(1, [10, 0, 0, 3]) + tlv(2, [0x02, 0, 0, 0, 0, 3]))  // NDA_DST, NDA_LLADDR

    static let fdb = NetlinkMessage(
        type: 28, flags: 0, seq: 0, pid: 0,
        payload: [7, 0, 0, 0] + le32(Int32(6)) + le16(0x80) + [0x02, 0]  // ndmsg AF_BRIDGE idx 6 PERMANENT NTF_SELF
            + tlv(2, [0, 0, 0, 0, 0, 0]) + tlv(1, [198, 18, 0, 2])  // NDA_LLADDR, NDA_DST
            + tlv(7, u32: 4097) + tlv(6, be16(4789)))  // NDA_VNI, NDA_PORT

    /// NLMSG_ERROR, capped, with NLMSGERR_ATTR_MSG and NLMSGERR_ATTR_OFFS.
    static let cappedError = NetlinkMessage(
        type: 2, flags: 0x300, seq: 5, pid: 0,
        payload:
            le32(Int32(-17))
            + le32(UInt32(64)) + le16(16) + le16(0x605) + le32(UInt32(5)) + le32(UInt32(0))  // echoed nlmsghdr
            + tlv(1, string: "VXLAN: A VXLAN device with the specified VNI already exists")
            + tlv(2, u32: 36))

    static var all: [NetlinkMessage] { [vxlanLink, vethLink, address, route, neighbour, fdb, cappedError] }
}

@Suite struct LinkDecodingTests {
    @Test func vxlanLink() throws {
        let l = try #require(LinkMessages.decode(Replies.vxlanLink))
        #expect(l.index == 7)
        #expect(l.name == "vxlan0")
        #expect(l.kind == "vxlan")
        #expect(l.mtu == 1450)
        #expect(l.mac == MACAddress("02:ab:cd:00:00:01"))
        #expect(l.isUp)
        #expect(l.operState == 6)
        #expect(l.operStateName == "UP")  // as `ip link` prints it
        #expect(l.masterIndex == 4)
        #expect(l.parentIndex == nil)
        #expect(
            l.vxlan
                == VXLANAttributes(
                    vni: 4097, local: IPAddress("198.18.0.1"), port: 4789, learning: false,
                    proxy: true, ttl: nil, underlayIndex: 2))
    }

    @Test func vethLinkAndDown() throws {
        let l = try #require(LinkMessages.decode(Replies.vethLink))
        #expect(l.name == "veth0" && l.kind == "veth" && l.parentIndex == 13)
        #expect(!l.isUp)
        #expect(l.vxlan == nil && l.mtu == nil && l.mac == nil && l.operState == nil)
        #expect(l.operStateName == "UNKNOWN")
    }

    @Test func vxlanIPv6LocalAndTTL() throws {
        let v6 = try #require(IPAddress("2001:db8::1"))
        let m = NetlinkMessage(
            type: 16, flags: 0, seq: 0, pid: 0,
            payload:
                Replies.ifinfomsg(index: 2, flags: 0) + tlv(3, string: "vx6")
                + nest(18, tlv(1, string: "vxlan"), nest(2, tlv(1, u32: 1), tlv(17, v6.bytes), tlv(5, u8: 64))))
        let l = try #require(LinkMessages.decode(m))
        #expect(l.vxlan?.local == v6)
        #expect(l.vxlan?.ttl == 64)
        #expect(l.vxlan?.port == 0)
    }

    @Test func infoDataIgnoredForOtherKinds() throws {
        let m = NetlinkMessage(
            type: 16, flags: 0, seq: 0, pid: 0,
            payload:
                Replies.ifinfomsg(index: 2, flags: 0) + nest(18, tlv(1, string: "bridge"), nest(2, tlv(1, u32: 1))))
        #expect(try #require(LinkMessages.decode(m)).vxlan == nil)
    }

    @Test func rejectsOtherTypesAndShortHeaders() {
        var m = Replies.vxlanLink
        m.type = 17  // RTM_DELLINK is the monitor's job
        #expect(LinkMessages.decode(m) == nil)
        #expect(LinkMessages.decode(NetlinkMessage(type: 16, flags: 0, seq: 0, pid: 0, payload: [UInt8](repeating: 0, count: 15))) == nil)
        #expect(
            LinkMessages.decode(NetlinkMessage(type: 16, flags: 0, seq: 0, pid: 0, payload: [UInt8](repeating: 0, count: 16)))?.name == "")
    }
}

@Suite struct AddressDecodingTests {
    @Test func ipv4WithLabel() throws {
        let a = try #require(AddressMessages.decode(Replies.address))
        #expect(a.device == .index(3))
        #expect(a.prefix == IPPrefix("10.0.0.2/24"))
        #expect(a.scope == .universe)
        #expect(a.label == "eth0")
    }

    @Test func prefersLocalOverPeerAddress() throws {
        let m = NetlinkMessage(
            type: 20, flags: 0, seq: 0, pid: 0, payload: [2, 32, 0, 0, 5, 0, 0, 0] + tlv(1, [10, 9, 9, 9]) + tlv(2, [10, 0, 0, 1]))
        #expect(try #require(AddressMessages.decode(m)).prefix == IPPrefix("10.0.0.1/32"))
    }

    @Test func ipv6LinkScopeOnlyIFAAddress() throws {
        let m = NetlinkMessage(
            type: 20, flags: 0, seq: 0, pid: 0, payload: [10, 64, 0, 253, 2, 0, 0, 0] + tlv(1, try #require(IPAddress("fe80::2")).bytes))
        let a = try #require(AddressMessages.decode(m))
        #expect(a.prefix == IPPrefix("fe80::2/64"))
        #expect(a.scope == .link)
        #expect(a.label == nil)
    }

    @Test func rejectsMalformed() {
        // prefix length beyond the address width
        #expect(
            AddressMessages.decode(
                NetlinkMessage(type: 20, flags: 0, seq: 0, pid: 0, payload: [2, 33, 0, 0, 1, 0, 0, 0] + tlv(2, [10, 0, 0, 1]))) == nil)
        // no address at all
        #expect(AddressMessages.decode(NetlinkMessage(type: 20, flags: 0, seq: 0, pid: 0, payload: [2, 24, 0, 0, 1, 0, 0, 0])) == nil)
        // address of the wrong size
        #expect(
            AddressMessages.decode(
                NetlinkMessage(type: 20, flags: 0, seq: 0, pid: 0, payload: [2, 24, 0, 0, 1, 0, 0, 0] + tlv(2, [10, 0, 0]))) == nil)
        // short header, wrong type
        #expect(AddressMessages.decode(NetlinkMessage(type: 20, flags: 0, seq: 0, pid: 0, payload: [2, 24, 0, 0, 1, 0, 0])) == nil)
        #expect(AddressMessages.decode(NetlinkMessage(type: 21, flags: 0, seq: 0, pid: 0, payload: Replies.address.payload)) == nil)
    }
}

@Suite struct RouteDecodingTests {
    @Test func tableAttributeOverridesHeaderAndOnlink() throws {
        let r = try #require(RouteMessages.decode(Replies.route))
        #expect(r.destination == IPPrefix("10.10.0.0/24"))
        #expect(r.gateway == IPAddress("10.0.0.1"))
        #expect(r.device == .index(3))
        #expect(r.table == 1000)
        #expect(r.onlink)
        #expect(r.metric == 20)
        #expect(r.preferredSource == IPAddress("10.0.0.2"))
        #expect(r.proto == 0x6d)
        #expect(r.scope == .universe)
    }

    @Test func defaultRouteWhenNoDestination() throws {
        let m4 = NetlinkMessage(
            type: 24, flags: 0, seq: 0, pid: 0,
            payload:
                Replies.rtmsg(family: 2, dstLen: 0, table: 254, proto: 3, scope: 0, type: 1, flags: 0) + tlv(5, [10, 0, 0, 1]))
        let r4 = try #require(RouteMessages.decode(m4))
        #expect(r4.destination == IPPrefix("0.0.0.0/0"))
        #expect(r4.table == 254)  // from rtm_table, no RTA_TABLE
        #expect(!r4.onlink)
        #expect(r4 == Route.defaultRoute(via: try #require(IPAddress("10.0.0.1"))).with(proto: 3, scope: .universe))

        let m6 = NetlinkMessage(
            type: 24, flags: 0, seq: 0, pid: 0,
            payload:
                Replies.rtmsg(family: 10, dstLen: 0, table: 254, proto: 3, scope: 0, type: 1, flags: 0)
                + tlv(5, try #require(IPAddress("fe80::1")).bytes) + tlv(15, u32: 254))
        #expect(try #require(RouteMessages.decode(m6)).destination == IPPrefix("::/0"))
    }

    @Test func clearsHostBitsAndMapsScope() throws {
        let m = NetlinkMessage(
            type: 24, flags: 0, seq: 0, pid: 0,
            payload:
                Replies.rtmsg(family: 2, dstLen: 8, table: 254, proto: 2, scope: 253, type: 1, flags: 0) + tlv(1, [10, 1, 2, 3]))
        let r = try #require(RouteMessages.decode(m))
        #expect(r.destination.description == "10.0.0.0/8")
        #expect(r.scope == .link && r.gateway == nil && r.device == nil)
    }

    @Test func rejectsNonUnicastAndBadLengths() {
        let local = Replies.rtmsg(family: 2, dstLen: 32, table: 255, proto: 2, scope: 254, type: 2, flags: 0) + tlv(1, [10, 0, 0, 1])
        #expect(RouteMessages.decode(NetlinkMessage(type: 24, flags: 0, seq: 0, pid: 0, payload: local)) == nil)
        let tooLong = Replies.rtmsg(family: 2, dstLen: 33, table: 254, proto: 2, scope: 0, type: 1, flags: 0) + tlv(1, [10, 0, 0, 1])
        #expect(RouteMessages.decode(NetlinkMessage(type: 24, flags: 0, seq: 0, pid: 0, payload: tooLong)) == nil)
        #expect(RouteMessages.decode(NetlinkMessage(type: 24, flags: 0, seq: 0, pid: 0, payload: Array(local.prefix(11)))) == nil)
    }
}

extension Route {
    fileprivate func with(proto: UInt8, scope: RouteScope?) -> Route {
        var r = self
        r.proto = proto
        r.scope = scope
        return r
    }
}

@Suite struct NeighbourDecodingTests {
    @Test func neighbour() throws {
        let n = try #require(NeighbourMessages.decodeNeighbor(Replies.neighbour))
        #expect(n == Neighbor(device: .index(4), address: try #require(IPAddress("10.0.0.3")), mac: MACAddress("02:00:00:00:00:03")))
        #expect(n.isPermanent)
        #expect(NeighbourMessages.decodeFDB(Replies.neighbour) == nil)
    }

    @Test func fdb() throws {
        let e = try #require(NeighbourMessages.decodeFDB(Replies.fdb))
        #expect(e == FDBEntry(device: .index(6), mac: .zero, destination: IPAddress("198.18.0.2"), vni: 4097, port: 4789))
        #expect(e.flags == FDBEntry.selfFlag && e.state == Neighbor.permanent)
        #expect(NeighbourMessages.decodeNeighbor(Replies.fdb) == nil)
    }

    @Test func localFDBAndIncompleteNeighbour() throws {
        let local = NetlinkMessage(
            type: 29, flags: 0, seq: 0, pid: 0,
            payload: [7, 0, 0, 0] + le32(Int32(6)) + le16(0x80) + [0x02, 0] + tlv(2, [0x02, 0, 0, 0, 0, 9]))
        let e = try #require(NeighbourMessages.decodeFDB(local))
        #expect(e.destination == nil && e.vni == nil && e.port == nil)
        let incomplete = NetlinkMessage(
            type: 28, flags: 0, seq: 0, pid: 0, payload: [2, 0, 0, 0] + le32(Int32(4)) + le16(0x01) + [0, 1] + tlv(1, [10, 0, 0, 9]))
        let n = try #require(NeighbourMessages.decodeNeighbor(incomplete))
        #expect(n.mac == nil && !n.isPermanent && n.state == 1)
        // a neighbour without NDA_DST, an FDB entry without NDA_LLADDR, a short header
        #expect(
            NeighbourMessages.decodeNeighbor(
                NetlinkMessage(type: 28, flags: 0, seq: 0, pid: 0, payload: Array(incomplete.payload.prefix(12)))) == nil)
        #expect(
            NeighbourMessages.decodeFDB(NetlinkMessage(type: 28, flags: 0, seq: 0, pid: 0, payload: Array(local.payload.prefix(12)))) == nil
        )
        #expect(
            NeighbourMessages.decodeNeighbor(
                NetlinkMessage(type: 28, flags: 0, seq: 0, pid: 0, payload: Array(incomplete.payload.prefix(11)))) == nil)
    }
}

@Suite struct MonitorDecodingTests {
    @Test func mapsEveryTypeToAnEvent() throws {
        func retyped(_ m: NetlinkMessage, _ t: UInt16) -> NetlinkMessage {
            var c = m
            c.type = t
            return c
        }
        let link = try #require(LinkMessages.decode(Replies.vxlanLink))
        #expect(NetlinkMonitor.decode(Replies.vxlanLink) == .linkChanged(link))
        #expect(NetlinkMonitor.decode(retyped(Replies.vxlanLink, 17)) == .linkRemoved(link))
        let addr = try #require(AddressMessages.decode(Replies.address))
        #expect(NetlinkMonitor.decode(Replies.address) == .addressAdded(addr))
        #expect(NetlinkMonitor.decode(retyped(Replies.address, 21)) == .addressRemoved(addr))
        let route = try #require(RouteMessages.decode(Replies.route))
        #expect(NetlinkMonitor.decode(Replies.route) == .routeAdded(route))
        #expect(NetlinkMonitor.decode(retyped(Replies.route, 25)) == .routeRemoved(route))
        let n = try #require(NeighbourMessages.decodeNeighbor(Replies.neighbour))
        #expect(NetlinkMonitor.decode(Replies.neighbour) == .neighborChanged(n))
        #expect(NetlinkMonitor.decode(retyped(Replies.neighbour, 29)) == .neighborRemoved(n))
        let f = try #require(NeighbourMessages.decodeFDB(Replies.fdb))
        #expect(NetlinkMonitor.decode(Replies.fdb) == .fdbChanged(f))
        #expect(NetlinkMonitor.decode(retyped(Replies.fdb, 29)) == .fdbRemoved(f))
        #expect(NetlinkMonitor.decode(Replies.cappedError) == nil)
        #expect(NetlinkMonitor.decode(retyped(Replies.route, 26)) == nil)  // RTM_GETROUTE
    }
}

@Suite struct StatusParsingTests {
    @Test func ack() throws {
        let m = NetlinkMessage(
            type: 2, flags: 0x100, seq: 1, pid: 0,
            payload:
                le32(Int32(0)) + le32(UInt32(36)) + le16(16) + le16(0x605) + le32(UInt32(1)) + le32(UInt32(0)))
        #expect(try NetlinkStatus.parse(m, isDone: false) == NetlinkStatus(error: 0, message: nil, offset: nil))
    }

    @Test func cappedErrorWithExtendedAck() throws {
        let s = try NetlinkStatus.parse(Replies.cappedError, isDone: false)
        #expect(s.error == -17)
        #expect(s.message == "VXLAN: A VXLAN device with the specified VNI already exists")
        #expect(s.offset == 36)
    }

    @Test func uncappedErrorEchoesWholeRequest() throws {
        // The echoed request's nlmsg_len (37) is not a multiple of 4: the TLVs start after its padding.
        let request = NetlinkMessage(type: 16, flags: 0x605, seq: 3, pid: 0, payload: Array(1...21)).encoded()
        #expect(request.count == 40)
        let m = NetlinkMessage(
            type: 2, flags: 0x200, seq: 3, pid: 0,
            payload:
                le32(Int32(-22)) + request + tlv(1, string: "Attribute failed policy validation") + tlv(2, u32: 20))
        let s = try NetlinkStatus.parse(m, isDone: false)
        #expect(s == NetlinkStatus(error: -22, message: "Attribute failed policy validation", offset: 20))
    }

    @Test func withoutAckTLVsFlagTheTailIsIgnored() throws {
        var m = Replies.cappedError
        m.flags = 0x100
        #expect(try NetlinkStatus.parse(m, isDone: false) == NetlinkStatus(error: -17, message: nil, offset: nil))
    }

    @Test func done() throws {
        let empty = NetlinkMessage(type: 3, flags: 2, seq: 1, pid: 0, payload: [])
        #expect(try NetlinkStatus.parse(empty, isDone: true).error == 0)
        let withTLV = NetlinkMessage(type: 3, flags: 0x202, seq: 1, pid: 0, payload: le32(Int32(-4)) + tlv(1, string: "dump interrupted"))
        #expect(try NetlinkStatus.parse(withTLV, isDone: true) == NetlinkStatus(error: -4, message: "dump interrupted", offset: nil))
    }

    @Test func truncatedError() throws {
        let m = NetlinkMessage(type: 2, flags: 0, seq: 1, pid: 0, payload: [0xff, 0xff])
        #expect(throws: WireError.truncated(what: "nlmsgerr", need: 4, have: 2)) { try NetlinkStatus.parse(m, isDone: false) }
        // ACK_TLVS set but no room for the echoed header: the errno alone
        let short = NetlinkMessage(type: 2, flags: 0x300, seq: 1, pid: 0, payload: le32(Int32(-1)) + [0, 0, 0])
        #expect(try NetlinkStatus.parse(short, isDone: false) == NetlinkStatus(error: -1, message: nil, offset: nil))
    }
}

@Suite struct MessageFramingTests {
    @Test func encodedHeaderLayout() {
        let bytes = NetlinkMessage(type: 0x1234, flags: 0x0305, seq: 0xAABBCCDD, pid: 42, payload: [9, 8, 7]).encoded()
        expectBytes(
            bytes,
            [
                0x13, 0x00, 0x00, 0x00,  // nlmsg_len 19 (unpadded)
                0x34, 0x12, 0x05, 0x03,  // nlmsg_type, nlmsg_flags
                0xdd, 0xcc, 0xbb, 0xaa,  // nlmsg_seq
                0x2a, 0x00, 0x00, 0x00,  // nlmsg_pid
                0x09, 0x08, 0x07, 0x00,  // payload + 1 byte of padding
            ])
    }

    @Test func parseAllSeveralMessagesWithPadding() throws {
        let msgs = [
            NetlinkMessage(type: 16, flags: 2, seq: 1, pid: 7, payload: [1, 2, 3, 4, 5]),  // padded by 3
            NetlinkMessage(type: 3, flags: 2, seq: 1, pid: 7, payload: []),
            Replies.vxlanLink,
            NetlinkMessage(type: 20, flags: 2, seq: 2, pid: 7, payload: Array(0..<7)),  // padded by 1
        ]
        let buffer = msgs.flatMap { $0.encoded() }
        #expect(buffer.count == 24 + 16 + Replies.vxlanLink.encoded().count + 24)
        #expect(try NetlinkMessage.parseAll(buffer) == msgs)
        // The last message may end without its padding, and fewer than 16 trailing bytes are ignored.
        #expect(try NetlinkMessage.parseAll(buffer.dropLast(1)) == msgs)
        #expect(try NetlinkMessage.parseAll(msgs[0].encoded().dropLast(3)) == [msgs[0]])
        #expect(try NetlinkMessage.parseAll(buffer + [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]) == msgs)
        #expect(try NetlinkMessage.parseAll([UInt8]()) == [])
    }

    @Test func parseAllRejectsOverrunAndUnderrun() throws {
        let good = NetlinkMessage(type: 16, flags: 0, seq: 1, pid: 0, payload: [1, 2, 3, 4]).encoded()
        var overrun = good
        overrun[0] = UInt8(good.count + 4)
        #expect(throws: WireError.badLength(offset: 0, length: good.count + 4)) { try NetlinkMessage.parseAll(overrun) }
        // the second message's length overruns: the error names its offset
        #expect(throws: WireError.badLength(offset: good.count, length: good.count + 1)) {
            var second = good
            second[0] = UInt8(good.count + 1)
            return try NetlinkMessage.parseAll(good + second)
        }
        var tooShort = good
        tooShort[0] = 15
        #expect(throws: WireError.badLength(offset: 0, length: 15)) { try NetlinkMessage.parseAll(tooShort) }
        var huge = good
        huge.replaceSubrange(0..<4, with: [0xff, 0xff, 0xff, 0xff])
        #expect(throws: WireError.badLength(offset: 0, length: 0xFFFF_FFFF)) { try NetlinkMessage.parseAll(huge) }
    }

    @Test func attributesMaskFlagsLastWinsAndStopAtGarbage() {
        let bytes = tlv(0x8000 | 5, u32: 1) + tlv(0x4000 | 6, [1, 2]) + tlv(5, u32: 2) + [0x10, 0x00, 0x07, 0x00, 0xaa]  // last claims 16 B
        let a = NetlinkAttributes(bytes)
        #expect(a.entries.count == 3)
        #expect(a.u32(5) == 2)  // last occurrence wins
        #expect(a.be16(6) == 0x0102)
        #expect(a.u16(6) == 0x0201)
        #expect(!a.has(7))
        #expect(a.u32(6) == nil)  // too short for a u32
        #expect(a.string(99) == nil)
        #expect(NetlinkAttributes(tlv(1, [0x61, 0x62, 0, 0x63])).string(1) == "ab")
        #expect(NetlinkAttributes(tlv(1, Array("abc".utf8))).string(1) == "abc")  // no NUL: whole value
        // zero-length attribute value, then a len < 4 attribute ends the walk
        let z = NetlinkAttributes(tlv(2, []) + [0x03, 0x00, 0x01, 0x00] + tlv(1, u8: 1))
        #expect(z.entries.count == 1 && z[2] == [])
    }
}
