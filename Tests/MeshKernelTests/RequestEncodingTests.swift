// Golden bytes of requests, derived by hand from the uapi headers (linux/netlink.h, rtnetlink.h,
// if_link.h, if_addr.h, neighbour.h, veth.h). `body` is everything after the 16-byte nlmsghdr;
// integers are host order (little-endian here) unless marked "network order".
// Nests carry NLA_F_NESTED (0x8000, netlink.h) in nla_type: libnl 3.7's nla_nest_start sets it,
// the kernel accepts it everywhere and requires it for strictly validated nests.
//
// Constants used below:
//   RTM_NEWLINK 16  RTM_DELLINK 17  RTM_GETLINK 18  RTM_NEWADDR 20  RTM_GETADDR 22
//   RTM_NEWROUTE 24 RTM_DELROUTE 25 RTM_GETROUTE 26 RTM_NEWNEIGH 28 RTM_DELNEIGH 29 RTM_GETNEIGH 30
//   NLM_F_REPLACE 0x100  NLM_F_EXCL 0x200  NLM_F_CREATE 0x400  NLM_F_APPEND 0x800  NLM_F_DUMP 0x300
//   IFLA_ADDRESS 1 IFLA_IFNAME 3 IFLA_MTU 4 IFLA_MASTER 10 IFLA_LINKINFO 18
//   IFLA_INFO_KIND 1 IFLA_INFO_DATA 2  VETH_INFO_PEER 1  NLA_F_NESTED 0x8000
//   IFLA_VXLAN_ID 1 IFLA_VXLAN_LINK 3 IFLA_VXLAN_LOCAL 4 IFLA_VXLAN_TTL 5 IFLA_VXLAN_LEARNING 7
//   IFLA_VXLAN_PROXY 11 IFLA_VXLAN_PORT 15 (network order)
//   IFA_ADDRESS 1 IFA_LOCAL 2 IFA_LABEL 3
//   RTA_DST 1 RTA_OIF 4 RTA_GATEWAY 5 RTA_PRIORITY 6 RTA_TABLE 15  RTN_UNICAST 1  RTNH_F_ONLINK 4
//   RT_SCOPE_UNIVERSE 0 RT_SCOPE_LINK 253 RT_SCOPE_NOWHERE 255  RT_TABLE_MAIN 254
//   NDA_DST 1 NDA_LLADDR 2 NDA_PORT 6 (network order) NDA_VNI 7 NDA_IFINDEX 8
//   NUD_PERMANENT 0x80  NTF_SELF 0x02  AF_INET 2  AF_BRIDGE 7  AF_INET6 10  IFF_UP 1
//   RTM_NEWRULE 32 RTM_DELRULE 33 RTM_GETRULE 34 (fib_rules.h:) FR_ACT_TO_TBL 1
//   FRA_SRC 2 FRA_PRIORITY 6 FRA_FWMARK 10 FRA_TABLE 15 FRA_FWMASK 16 FRA_PROTOCOL 21
@testable import MeshKernel
import Testing

@Suite struct LinkRequestEncodingTests {
    @Test func addVXLAN() throws {
        let spec = LinkSpec(
            name: "vxlan0",
            kind: .vxlan(
                VXLANAttributes(
                    vni: 4097, local: IPAddress("198.18.0.1"), port: 4789, learning: false)))
        let req = try LinkMessages.add(spec, masterIndex: nil)
        #expect(req.type == 16)  // RTM_NEWLINK
        #expect(req.flags == 0x600)  // NLM_F_CREATE | NLM_F_EXCL
        #expect(!req.isDump)
        #expect(req.operation == "ip link add vxlan0 type vxlan")
        expectBytes(
            req.body,
            [
                // ifinfomsg (16 B): family AF_UNSPEC, pad, type, index 0, flags 0, change 0
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                // IFLA_IFNAME "vxlan0\0" (len 11, padded to 12)
                0x0b, 0x00, 0x03, 0x00, 0x76, 0x78, 0x6c, 0x61, 0x6e, 0x30, 0x00, 0x00,
                // IFLA_LINKINFO | NLA_F_NESTED (len 60 = 4 + 12 + 44)
                0x3c, 0x00, 0x12, 0x80,
                //   IFLA_INFO_KIND "vxlan\0" (len 10, padded to 12)
                0x0a, 0x00, 0x01, 0x00, 0x76, 0x78, 0x6c, 0x61, 0x6e, 0x00, 0x00, 0x00,
                //   IFLA_INFO_DATA | NLA_F_NESTED (len 44 = 4 + 8 + 8 + 8 + 8 + 8)
                0x2c, 0x00, 0x02, 0x80,
                //     IFLA_VXLAN_ID u32 4097 = 0x1001
                0x08, 0x00, 0x01, 0x00, 0x01, 0x10, 0x00, 0x00,
                //     IFLA_VXLAN_LOCAL 198.18.0.1 (network order)
                0x08, 0x00, 0x04, 0x00, 0xc6, 0x12, 0x00, 0x01,
                //     IFLA_VXLAN_PORT be16 4789 = 0x12b5 (len 6, padded to 8)
                0x06, 0x00, 0x0f, 0x00, 0x12, 0xb5, 0x00, 0x00,
                //     IFLA_VXLAN_LEARNING u8 0 (len 5, padded to 8)
                0x05, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00,
                //     IFLA_VXLAN_PROXY u8 0 (len 5, padded to 8)
                0x05, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00,
            ])
    }

    @Test func addVXLANWithTTLAndUnderlayAndMaster() throws {
        let spec = LinkSpec(
            name: "vx1",
            kind: .vxlan(
                VXLANAttributes(
                    vni: 7, port: 8472, learning: true, proxy: true, ttl: 64, underlayIndex: 2)), up: true)
        let req = try LinkMessages.add(spec, masterIndex: 9, verb: .replace)
        #expect(req.flags == 0x500)  // NLM_F_CREATE | NLM_F_REPLACE
        expectBytes(
            req.body,
            [
                // ifinfomsg (16 B): index 0, flags IFF_UP, change IFF_UP
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                // IFLA_IFNAME "vx1\0"
                0x08, 0x00, 0x03, 0x00, 0x76, 0x78, 0x31, 0x00,
                // IFLA_MASTER u32 9
                0x08, 0x00, 0x0a, 0x00, 0x09, 0x00, 0x00, 0x00,
                // IFLA_LINKINFO | NLA_F_NESTED (len 68 = 4 + 12 + 52)
                0x44, 0x00, 0x12, 0x80,
                //   IFLA_INFO_KIND "vxlan\0"
                0x0a, 0x00, 0x01, 0x00, 0x76, 0x78, 0x6c, 0x61, 0x6e, 0x00, 0x00, 0x00,
                //   IFLA_INFO_DATA | NLA_F_NESTED (len 52 = 4 + 6 × 8)
                0x34, 0x00, 0x02, 0x80,
                //     IFLA_VXLAN_ID u32 7
                0x08, 0x00, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00,
                //     IFLA_VXLAN_PORT be16 8472 = 0x2118
                0x06, 0x00, 0x0f, 0x00, 0x21, 0x18, 0x00, 0x00,
                //     IFLA_VXLAN_LEARNING u8 1
                0x05, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00,
                //     IFLA_VXLAN_PROXY u8 1
                0x05, 0x00, 0x0b, 0x00, 0x01, 0x00, 0x00, 0x00,
                //     IFLA_VXLAN_TTL u8 64
                0x05, 0x00, 0x05, 0x00, 0x40, 0x00, 0x00, 0x00,
                //     IFLA_VXLAN_LINK u32 2
                0x08, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00,
            ])
    }

    @Test func addVethWithPeerName() throws {
        let req = try LinkMessages.add(LinkSpec(name: "veth0", kind: .veth(peerName: "veth1", peerNamespace: nil)), masterIndex: nil)
        #expect(req.type == 16)
        #expect(req.flags == 0x600)
        expectBytes(
            req.body,
            [
                // ifinfomsg (16 B)
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                // IFLA_IFNAME "veth0\0" (len 10, padded to 12)
                0x0a, 0x00, 0x03, 0x00, 0x76, 0x65, 0x74, 0x68, 0x30, 0x00, 0x00, 0x00,
                // IFLA_LINKINFO | NLA_F_NESTED (len 52 = 4 + 12 + 36)
                0x34, 0x00, 0x12, 0x80,
                //   IFLA_INFO_KIND "veth\0" (len 9, padded to 12)
                0x09, 0x00, 0x01, 0x00, 0x76, 0x65, 0x74, 0x68, 0x00, 0x00, 0x00, 0x00,
                //   IFLA_INFO_DATA | NLA_F_NESTED (len 36)
                0x24, 0x00, 0x02, 0x80,
                //     VETH_INFO_PEER | NLA_F_NESTED (len 32): an ifinfomsg then the peer's attributes
                0x20, 0x00, 0x01, 0x80,
                //       ifinfomsg (16 B)
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                //       IFLA_IFNAME "veth1\0"
                0x0a, 0x00, 0x03, 0x00, 0x76, 0x65, 0x74, 0x68, 0x31, 0x00, 0x00, 0x00,
            ])
    }

    @Test func addBridgeUpWithMTUAndMAC() throws {
        let spec = LinkSpec(name: "br0", kind: .bridge, mtu: 1450, mac: MACAddress("02:00:00:00:00:01"), up: true)
        let req = try LinkMessages.add(spec, masterIndex: nil)
        #expect(req.type == 16)
        #expect(req.flags == 0x600)
        #expect(req.operation == "ip link add br0 type bridge")
        expectBytes(
            req.body,
            [
                // ifinfomsg (16 B): flags IFF_UP, change IFF_UP
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                // IFLA_IFNAME "br0\0"
                0x08, 0x00, 0x03, 0x00, 0x62, 0x72, 0x30, 0x00,
                // IFLA_MTU u32 1450 = 0x5aa
                0x08, 0x00, 0x04, 0x00, 0xaa, 0x05, 0x00, 0x00,
                // IFLA_ADDRESS 02:00:00:00:00:01 (len 10, padded to 12)
                0x0a, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
                // IFLA_LINKINFO | NLA_F_NESTED (len 16), no IFLA_INFO_DATA
                0x10, 0x00, 0x12, 0x80,
                //   IFLA_INFO_KIND "bridge\0" (len 11, padded to 12)
                0x0b, 0x00, 0x01, 0x00, 0x62, 0x72, 0x69, 0x64, 0x67, 0x65, 0x00, 0x00,
            ])
    }

    @Test func setUpAndMTU() throws {
        let req = try LinkMessages.set(index: 5, label: "eth0", LinkChange(up: true, mtu: 9000), masterIndex: nil)
        #expect(req.type == 16)  // RTM_NEWLINK
        #expect(req.flags == 0)
        #expect(req.operation == "ip link set eth0")
        expectBytes(
            req.body,
            [
                // ifinfomsg (16 B): index 5, flags IFF_UP, change IFF_UP
                0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                // IFLA_MTU u32 9000 = 0x2328
                0x08, 0x00, 0x04, 0x00, 0x28, 0x23, 0x00, 0x00,
            ])
    }

    @Test func setDownRenameNomaster() throws {
        let req = try LinkMessages.set(index: 5, label: "eth0", LinkChange(up: false, master: .index(0), name: "wan"), masterIndex: 0)
        expectBytes(
            req.body,
            [
                // ifinfomsg (16 B): index 5, flags 0, change IFF_UP
                0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
                // IFLA_IFNAME "wan\0"
                0x08, 0x00, 0x03, 0x00, 0x77, 0x61, 0x6e, 0x00,
                // IFLA_MASTER u32 0 (nomaster)
                0x08, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00,
            ])
    }

    @Test func deleteByIndex() throws {
        let req = try LinkMessages.delete(index: 7, label: "vxlan0")
        #expect(req.type == 17)  // RTM_DELLINK
        #expect(req.flags == 0)
        #expect(req.operation == "ip link del vxlan0")
        expectBytes(
            req.body,
            [
                // ifinfomsg (16 B): index 7
                0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ])
    }

    @Test func getAndDump() throws {
        let byName = try LinkMessages.get("lo")
        #expect(byName.type == 18 && byName.flags == 0)  // RTM_GETLINK
        expectBytes(
            byName.body,
            [
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // ifinfomsg
                0x07, 0x00, 0x03, 0x00, 0x6c, 0x6f, 0x00, 0x00,  // IFLA_IFNAME "lo\0" (len 7)
            ])
        let byIndex = try LinkMessages.get(.index(1))
        expectBytes(
            byIndex.body,
            [
                0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // ifinfomsg index 1
            ])
        let dump = try LinkMessages.dump()
        #expect(dump.type == 18)
        #expect(dump.flags == 0x300)  // NLM_F_DUMP
        #expect(dump.isDump)
        expectBytes(dump.body, [UInt8](repeating: 0, count: 16))  // ifinfomsg
    }

    @Test func invalidNamesAreRefusedBeforeEncoding() {
        #expect(throws: KernelError.self) { try LinkMessages.add(LinkSpec(name: "", kind: .dummy), masterIndex: nil) }
        #expect(throws: KernelError.self) { try LinkMessages.add(LinkSpec(name: "0123456789abcdef", kind: .bridge), masterIndex: nil) }
        #expect(throws: KernelError.self) {
            try LinkMessages.add(LinkSpec(name: "ok", kind: .veth(peerName: "a/b", peerNamespace: nil)), masterIndex: nil)
        }
        #expect(throws: KernelError.self) { try LinkMessages.set(index: 1, label: "x", LinkChange(name: "a b"), masterIndex: nil) }
        #expect(throws: KernelError.self) { try LinkMessages.get("has space") }
    }
}

@Suite struct AddressRequestEncodingTests {
    @Test func addIPv4OnIndex3() throws {
        let a = InterfaceAddress(device: .index(3), prefix: try #require(IPPrefix("10.0.0.2/24")))
        let req = try AddressMessages.change(.add, a, index: 3)
        #expect(req.type == 20)  // RTM_NEWADDR
        #expect(req.flags == 0x600)  // NLM_F_CREATE | NLM_F_EXCL
        #expect(req.operation == "ip addr add 10.0.0.2/24 dev ifindex 3")
        expectBytes(
            req.body,
            [
                // ifaddrmsg (8 B): family AF_INET, prefixlen 24, flags 0, scope universe, index 3
                0x02, 0x18, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
                // IFA_LOCAL 10.0.0.2
                0x08, 0x00, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x02,
                // IFA_ADDRESS 10.0.0.2
                0x08, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x02,
            ])
    }

    @Test func addIPv6LinkScopeWithLabelAndDelete() throws {
        let a = InterfaceAddress(device: "eth0", prefix: try #require(IPPrefix("fe80::2/64")), scope: .link, label: "eth0:x")
        let add = try AddressMessages.change(.replace, a, index: 2)
        #expect(add.flags == 0x500)
        let addr: [UInt8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02]
        expectBytes(
            add.body,
            [
                // ifaddrmsg (8 B): family AF_INET6, prefixlen 64, flags 0, scope link (253), index 2
                0x0a, 0x40, 0x00, 0xfd, 0x02, 0x00, 0x00, 0x00,
                // IFA_LOCAL fe80::2 (len 20)
                0x14, 0x00, 0x02, 0x00,
            ] + addr + [
                // IFA_ADDRESS fe80::2 (len 20)
                0x14, 0x00, 0x01, 0x00,
            ] + addr + [
                // IFA_LABEL "eth0:x\0" (len 11, padded to 12)
                0x0b, 0x00, 0x03, 0x00, 0x65, 0x74, 0x68, 0x30, 0x3a, 0x78, 0x00, 0x00,
            ])
        let del = try AddressMessages.change(.delete, a, index: 2)
        #expect(del.type == 21)  // RTM_DELADDR
        #expect(del.flags == 0)
        #expect(del.operation == "ip addr del fe80::2/64 dev eth0")
        expectBytes(del.body, Array(add.body.prefix(8 + 20 + 20)))  // no label on delete
    }

    @Test func noDADSetsTheHeaderFlagOnAddOnly() throws {
        let a = InterfaceAddress(device: "eth0", prefix: try #require(IPPrefix("fd00::11/128")), noDAD: true)
        let add = try AddressMessages.change(.add, a, index: 2)
        // ifaddrmsg: family AF_INET6, prefixlen 128, flags IFA_F_NODAD (0x02), scope universe, index 2
        expectBytes(Array(add.body.prefix(8)), [0x0a, 0x80, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00])
        let del = try AddressMessages.change(.delete, a, index: 2)
        #expect(del.body[2] == 0)
    }

    @Test func dump() throws {
        let req = try AddressMessages.dump(family: 2, index: 4)
        #expect(req.type == 22 && req.flags == 0x300)  // RTM_GETADDR, NLM_F_DUMP
        expectBytes(req.body, [0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00])  // ifaddrmsg
    }
}

@Suite struct RouteRequestEncodingTests {
    @Test func replaceOnLinkRoute() throws {
        let r = Route(destination: try #require(IPPrefix("10.10.0.0/24")), device: .index(3))
        #expect(r.effectiveScope == .link)
        let req = try RouteMessages.change(.replace, r, deviceIndex: 3)
        #expect(req.type == 24)  // RTM_NEWROUTE
        #expect(req.flags == 0x500)  // NLM_F_CREATE | NLM_F_REPLACE
        #expect(req.operation == "ip route replace 10.10.0.0/24 dev ifindex 3")
        expectBytes(
            req.body,
            [
                // rtmsg (12 B): family AF_INET, dst_len 24, src_len 0, tos 0,
                //               table main (254), protocol 0x6d, scope link (253), type unicast (1), flags 0
                0x02, 0x18, 0x00, 0x00, 0xfe, 0x6d, 0xfd, 0x01, 0x00, 0x00, 0x00, 0x00,
                // RTA_DST 10.10.0.0
                0x08, 0x00, 0x01, 0x00, 0x0a, 0x0a, 0x00, 0x00,
                // RTA_OIF u32 3
                0x08, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x00,
                // RTA_TABLE u32 254
                0x08, 0x00, 0x0f, 0x00, 0xfe, 0x00, 0x00, 0x00,
            ])
    }

    @Test func replaceDefaultViaGateway() throws {
        let r = Route.defaultRoute(via: try #require(IPAddress("10.0.0.1")))
        #expect(r.effectiveScope == .universe)
        let req = try RouteMessages.change(.replace, r, deviceIndex: nil)
        #expect(req.type == 24)
        #expect(req.flags == 0x500)
        #expect(req.operation == "ip route replace 0.0.0.0/0 via 10.0.0.1")
        expectBytes(
            req.body,
            [
                // rtmsg (12 B): AF_INET, dst_len 0, table main, proto 0x6d, scope universe, unicast
                0x02, 0x00, 0x00, 0x00, 0xfe, 0x6d, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                // no RTA_DST for a /0
                // RTA_GATEWAY 10.0.0.1
                0x08, 0x00, 0x05, 0x00, 0x0a, 0x00, 0x00, 0x01,
                // RTA_TABLE u32 254
                0x08, 0x00, 0x0f, 0x00, 0xfe, 0x00, 0x00, 0x00,
            ])
    }

    @Test func addOnlinkMetricBigTable() throws {
        let r = Route(
            destination: try #require(IPPrefix("10.20.3.4/16")), gateway: IPAddress("10.0.0.1"),
            device: .index(3), table: 1000, onlink: true, metric: 50)
        let req = try RouteMessages.change(.add, r, deviceIndex: 3)
        #expect(req.flags == 0x600)
        #expect(req.operation == "ip route add 10.20.0.0/16 via 10.0.0.1 dev ifindex 3 table 1000")
        expectBytes(
            req.body,
            [
                // rtmsg (12 B): AF_INET, dst_len 16, table RT_TABLE_UNSPEC (>255 goes in RTA_TABLE),
                //               proto 0x6d, scope universe, unicast, flags RTNH_F_ONLINK
                0x02, 0x10, 0x00, 0x00, 0x00, 0x6d, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00,
                // RTA_DST 10.20.0.0 (host bits cleared)
                0x08, 0x00, 0x01, 0x00, 0x0a, 0x14, 0x00, 0x00,
                // RTA_GATEWAY 10.0.0.1
                0x08, 0x00, 0x05, 0x00, 0x0a, 0x00, 0x00, 0x01,
                // RTA_OIF u32 3
                0x08, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x00,
                // RTA_PRIORITY u32 50
                0x08, 0x00, 0x06, 0x00, 0x32, 0x00, 0x00, 0x00,
                // RTA_TABLE u32 1000 = 0x3e8
                0x08, 0x00, 0x0f, 0x00, 0xe8, 0x03, 0x00, 0x00,
            ])
    }

    @Test func deleteMatchesAnyScopeAndProtocol() throws {
        let r = Route(destination: try #require(IPPrefix("10.10.0.0/24")), device: .index(3))
        let req = try RouteMessages.change(.delete, r, deviceIndex: 3)
        #expect(req.type == 25)  // RTM_DELROUTE
        #expect(req.flags == 0)
        #expect(req.operation == "ip route del 10.10.0.0/24 dev ifindex 3")
        // rtmsg: proto 0 (any), scope RT_SCOPE_NOWHERE (any)
        expectBytes(Array(req.body.prefix(12)), [0x02, 0x18, 0x00, 0x00, 0xfe, 0x00, 0xff, 0x01, 0x00, 0x00, 0x00, 0x00])
    }

    @Test func mixedFamiliesRefused() throws {
        let r = Route(destination: try #require(IPPrefix("10.0.0.0/8")), gateway: IPAddress("fe80::1"))
        #expect(throws: KernelError.self) { try RouteMessages.change(.add, r, deviceIndex: nil) }
    }

    @Test func dumpWithTable() throws {
        let req = try RouteMessages.dump(family: 10, table: 100)
        #expect(req.type == 26 && req.flags == 0x300)  // RTM_GETROUTE, NLM_F_DUMP
        expectBytes(
            req.body,
            [
                0x0a, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // rtmsg: AF_INET6, table 100
                0x08, 0x00, 0x0f, 0x00, 0x64, 0x00, 0x00, 0x00,  // RTA_TABLE 100
            ])
    }
}

@Suite struct RuleRequestEncodingTests {
    @Test func addFwmarkRuleToABigTable() throws {
        let r = FIBRule(priority: 1000, mark: 0x4dff_00c9, table: 0x4dff_00c9)
        let req = try RuleMessages.change(.add, r)
        #expect(req.type == 32)  // RTM_NEWRULE
        #expect(req.flags == 0x600)  // NLM_F_CREATE | NLM_F_EXCL
        #expect(req.operation == "ip rule add pref 1000 fwmark 0x4dff00c9/0xffffffff lookup 1308557513")
        expectBytes(
            req.body,
            [
                // fib_rule_hdr (12 B): family AF_INET, dst_len 0, src_len 0, tos 0,
                //                      table 0 (RT_TABLE_UNSPEC: the id is above 255), res1, res2, action FR_ACT_TO_TBL, flags 0
                0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                // FRA_PRIORITY u32 1000 = 0x3e8
                0x08, 0x00, 0x06, 0x00, 0xe8, 0x03, 0x00, 0x00,
                // FRA_FWMARK u32 0x4dff00c9, FRA_FWMASK u32 0xffffffff (a mark always with its mask)
                0x08, 0x00, 0x0a, 0x00, 0xc9, 0x00, 0xff, 0x4d,
                0x08, 0x00, 0x10, 0x00, 0xff, 0xff, 0xff, 0xff,
                // FRA_TABLE u32 0x4dff00c9
                0x08, 0x00, 0x0f, 0x00, 0xc9, 0x00, 0xff, 0x4d,
                // FRA_PROTOCOL u8 0x6d (len 5, padded to 8)
                0x05, 0x00, 0x15, 0x00, 0x6d, 0x00, 0x00, 0x00,
            ])
    }

    @Test func deleteSourceRuleAndRefuseReplace() throws {
        let r = FIBRule(priority: 1000, source: .host(try #require(IPAddress("10.255.0.11"))), table: 77)
        let req = try RuleMessages.change(.delete, r)
        #expect(req.type == 33)  // RTM_DELRULE
        #expect(req.flags == 0)
        #expect(req.operation == "ip rule del pref 1000 from 10.255.0.11/32 lookup 77")
        expectBytes(
            req.body,
            [
                // fib_rule_hdr: AF_INET, dst_len 0, src_len 32, tos 0, table 77, res1, res2, FR_ACT_TO_TBL, flags 0
                0x02, 0x00, 0x20, 0x00, 0x4d, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                // FRA_PRIORITY u32 1000
                0x08, 0x00, 0x06, 0x00, 0xe8, 0x03, 0x00, 0x00,
                // FRA_SRC 10.255.0.11 (network order)
                0x08, 0x00, 0x02, 0x00, 0x0a, 0xff, 0x00, 0x0b,
                // FRA_TABLE u32 77; no FRA_PROTOCOL: a delete matches whoever made the rule
                0x08, 0x00, 0x0f, 0x00, 0x4d, 0x00, 0x00, 0x00,
            ])
        #expect(throws: KernelError.self) { try RuleMessages.change(.replace, r) }
        let dump = try RuleMessages.dump(family: 2)
        #expect(dump.type == 34 && dump.isDump)
    }
}

@Suite struct NeighbourRequestEncodingTests {
    @Test func replacePermanentNeighbour() throws {
        let n = Neighbor(device: .index(4), address: try #require(IPAddress("10.0.0.3")), mac: MACAddress("02:00:00:00:00:03"))
        let req = try NeighbourMessages.change(.replace, n, index: 4)
        #expect(req.type == 28)  // RTM_NEWNEIGH
        #expect(req.flags == 0x500)  // NLM_F_CREATE | NLM_F_REPLACE
        #expect(req.operation == "ip neigh replace 10.0.0.3 lladdr 02:00:00:00:00:03 dev ifindex 4")
        expectBytes(
            req.body,
            [
                // ndmsg (12 B): family AF_INET, pad, pad, ifindex 4, state NUD_PERMANENT, flags 0, type 0
                0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,
                // NDA_DST 10.0.0.3
                0x08, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x03,
                // NDA_LLADDR 02:00:00:00:00:03 (len 10, padded to 12)
                0x0a, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
            ])
    }

    @Test func neighbourNeedsMACExceptOnDelete() throws {
        let n = Neighbor(device: .index(4), address: try #require(IPAddress("10.0.0.3")), mac: nil)
        #expect(throws: KernelError.self) { try NeighbourMessages.change(.replace, n, index: 4) }
        let del = try NeighbourMessages.change(.delete, n, index: 4)
        #expect(del.type == 29 && del.flags == 0)  // RTM_DELNEIGH
        expectBytes(
            del.body,
            [
                0x02, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // ndmsg, state 0
                0x08, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x03,  // NDA_DST
            ])
    }

    @Test func appendFDBWithDestination() throws {
        let e = FDBEntry(device: .index(6), mac: .zero, destination: IPAddress("198.18.0.2"))
        let req = try NeighbourMessages.change(.append, e, index: 6)
        #expect(req.type == 28)  // RTM_NEWNEIGH
        #expect(req.flags == 0xC00)  // NLM_F_CREATE | NLM_F_APPEND
        #expect(req.operation == "bridge fdb append 00:00:00:00:00:00 dev ifindex 6 dst 198.18.0.2")
        expectBytes(
            req.body,
            [
                // ndmsg (12 B): family AF_BRIDGE, pad, pad, ifindex 6, state NUD_PERMANENT, flags NTF_SELF, type 0
                0x07, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x80, 0x00, 0x02, 0x00,
                // NDA_LLADDR 00:00:00:00:00:00
                0x0a, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                // NDA_DST 198.18.0.2
                0x08, 0x00, 0x01, 0x00, 0xc6, 0x12, 0x00, 0x02,
            ])
    }

    @Test func appendFDBWithVNIAndPort() throws {
        let e = FDBEntry(
            device: .index(6), mac: try #require(MACAddress("02:00:00:00:00:09")),
            destination: IPAddress("198.18.0.2"), vni: 4097, port: 4789)
        let req = try NeighbourMessages.change(.append, e, index: 6)
        expectBytes(
            Array(req.body.dropFirst(12 + 12 + 8)),
            [
                // NDA_VNI u32 4097
                0x08, 0x00, 0x07, 0x00, 0x01, 0x10, 0x00, 0x00,
                // NDA_PORT be16 4789 (len 6, padded to 8)
                0x06, 0x00, 0x06, 0x00, 0x12, 0xb5, 0x00, 0x00,
            ])
    }

    @Test func dumpFDBFilteredByDevice() throws {
        let req = try NeighbourMessages.dump(family: 7, index: 6)
        #expect(req.type == 30 && req.flags == 0x300)  // RTM_GETNEIGH, NLM_F_DUMP
        #expect(req.operation == "bridge fdb show")
        expectBytes(
            req.body,
            [
                0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // ndmsg AF_BRIDGE
                0x08, 0x00, 0x08, 0x00, 0x06, 0x00, 0x00, 0x00,  // NDA_IFINDEX 6
            ])
    }
}
