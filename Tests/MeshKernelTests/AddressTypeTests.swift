// IPAddress, IPPrefix and MACAddress: parsing, printing, masking, containment and Codable.
import Foundation
@testable import MeshKernel
import Testing

@Suite struct IPAddressTests {
    @Test(arguments: ["10.0.0.1", "0.0.0.0", "255.255.255.255", "198.18.0.1"])
    func ipv4RoundTrip(text: String) throws {
        let a = try #require(IPAddress(text))
        #expect(a.isIPv4)
        #expect(a.description == text)
        #expect(a.bitWidth == 32)
        #expect(a.family == 2)  // AF_INET
        #expect(IPAddress(bytes: a.bytes) == a)
    }

    @Test func ipv4ValueIsNetworkOrder() throws {
        #expect(IPAddress("10.0.0.1") == .v4(0x0A00_0001))
        #expect(IPAddress("10.0.0.1")?.bytes == [10, 0, 0, 1])
        #expect(IPAddress(bytes: [198, 18, 0, 1]) == .v4(0xC612_0001))
    }

    /// Input → what inet_ntop prints (RFC 5952 compression, lowercase).
    @Test(arguments: [
        ("fe80::1", "fe80::1"),
        ("::", "::"),
        ("2001:db8::", "2001:db8::"),
        ("::1", "::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("FE80::ABCD", "fe80::abcd"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
    ])
    func ipv6ParseAndPrint(input: String, printed: String) throws {
        let a = try #require(IPAddress(input))
        #expect(!a.isIPv4)
        #expect(a.bitWidth == 128)
        #expect(a.family == 10)  // AF_INET6
        #expect(a.description == printed)
        #expect(IPAddress(printed) == a)
        #expect(IPAddress(bytes: a.bytes) == a)
    }

    @Test func ipv6HalvesAndBytes() throws {
        let a = try #require(IPAddress("fe80::1"))
        #expect(a == .v6(0xFE80_0000_0000_0000, 1))
        #expect(a.bytes == [0xfe, 0x80] + Array(repeating: 0, count: 13) + [1])
        #expect(IPAddress("::") == .v6(0, 0))
        #expect(IPAddress("2001:db8::") == .v6(0x2001_0DB8_0000_0000, 0))
    }

    @Test(arguments: [
        "10.0.0.256", "1.2.3", "", "::g", "1.2.3.4.5", " 10.0.0.1", "10.0.0.1 ",
        "1:2:3:4:5:6:7:8:9", "fe80::1::2", "10.0.0.1/24", "localhost", "0x0a000001", "fe80::1%eth0",
    ])
    func rejectsBadText(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func rejectsBadByteCounts() {
        #expect(IPAddress(bytes: [UInt8]()) == nil)
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
        #expect(IPAddress(bytes: [1, 2, 3, 4, 5]) == nil)
        #expect(IPAddress(bytes: [UInt8](repeating: 0, count: 15)) == nil)
        #expect(IPAddress(bytes: [UInt8](repeating: 0, count: 17)) == nil)
    }

    /// Swift hands the string to inet_pton as a C string, so an embedded NUL cuts it short and
    /// the garbage after it is ignored instead of rejected.
    @Test func embeddedNULIsRejected() {
        #expect(IPAddress("10.0.0.1\u{0}garbage") == nil)
    }

    @Test func masking() throws {
        let a = try #require(IPAddress("10.1.255.3"))
        #expect(a.masked(to: 32) == a)
        #expect(a.masked(to: 24) == IPAddress("10.1.255.0"))
        #expect(a.masked(to: 20) == IPAddress("10.1.240.0"))
        #expect(a.masked(to: 9) == IPAddress("10.0.0.0"))
        #expect(a.masked(to: 8) == IPAddress("10.0.0.0"))
        #expect(a.masked(to: 0) == IPAddress("0.0.0.0"))
        #expect(a.masked(to: 33) == a)  // out of range clamps, never traps
        #expect(a.masked(to: -1) == IPAddress("0.0.0.0"))
        let b = try #require(IPAddress("2001:db8:abcd:12::1"))
        #expect(b.masked(to: 128) == b)
        #expect(b.masked(to: 64) == IPAddress("2001:db8:abcd:12::"))
        #expect(b.masked(to: 60) == IPAddress("2001:db8:abcd:10::"))
        #expect(b.masked(to: 32) == IPAddress("2001:db8::"))
        #expect(b.masked(to: 0) == IPAddress("::"))
    }

    @Test func ordering() throws {
        let sorted = ["10.0.0.10", "9.255.255.255", "10.0.0.2"].compactMap(IPAddress.init).sorted()
        #expect(sorted.map(\.description) == ["9.255.255.255", "10.0.0.2", "10.0.0.10"])
    }

    @Test func codableAsJSONString() throws {
        let addrs = ["10.0.0.1", "fe80::1", "::"].compactMap(IPAddress.init)
        let json = try JSONEncoder().encode(addrs)
        #expect(String(decoding: json, as: UTF8.self) == #"["10.0.0.1","fe80::1","::"]"#)
        #expect(try JSONDecoder().decode([IPAddress].self, from: json) == addrs)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([IPAddress].self, from: Data(#"["10.0.0.256"]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([IPAddress].self, from: Data("[167772161]".utf8)) }
    }
}

@Suite struct IPPrefixTests {
    @Test func keepsHostBitsAndNetworkClearsThem() throws {
        let p = try #require(IPPrefix("10.0.0.2/24"))
        #expect(p.address == IPAddress("10.0.0.2"))
        #expect(p.length == 24)
        #expect(p.description == "10.0.0.2/24")
        #expect(p.network.description == "10.0.0.0/24")
        #expect(p.network.network == p.network)
        #expect(p != p.network)
        let q = try #require(IPPrefix("2001:db8::5/64"))
        #expect(q.network.description == "2001:db8::/64")
    }

    @Test func bareAddressIsHostPrefix() throws {
        #expect(IPPrefix("10.0.0.1")?.length == 32)
        #expect(IPPrefix("fe80::1")?.length == 128)
        let a = try #require(IPAddress("10.0.0.1"))
        #expect(IPPrefix.host(a) == IPPrefix("10.0.0.1/32"))
    }

    @Test func boundaryLengths() {
        #expect(IPPrefix("0.0.0.0/0")?.length == 0)
        #expect(IPPrefix("10.0.0.1/32")?.length == 32)
        #expect(IPPrefix("::/0")?.length == 0)
        #expect(IPPrefix("::1/128")?.length == 128)
    }

    @Test(arguments: [
        "10.0.0.0/33", "::/129", "10.0.0.1/024", "10.0.0.1/", "10.0.0.1/-1", "10.0.0.1/+24",
        "10.0.0.1/24/1", "/24", "", "10.0.0.1/ 24", "10.0.0.1/2a", "10.0.0.256/24", "fe80::1/0x40",
    ])
    func rejects(text: String) {
        #expect(IPPrefix(text) == nil)
    }

    @Test func memberwiseRejectsOutOfRange() throws {
        let v4 = try #require(IPAddress("10.0.0.0")), v6 = try #require(IPAddress("::"))
        #expect(IPPrefix(address: v4, length: -1) == nil)
        #expect(IPPrefix(address: v4, length: 33) == nil)
        #expect(IPPrefix(address: v6, length: 128) != nil)
        #expect(IPPrefix(address: v6, length: 129) == nil)
    }

    @Test func contains() throws {
        let p = try #require(IPPrefix("10.0.0.2/24"))
        #expect(p.contains(try #require(IPAddress("10.0.0.0"))))
        #expect(p.contains(try #require(IPAddress("10.0.0.255"))))
        #expect(!p.contains(try #require(IPAddress("10.0.1.0"))))
        #expect(!p.contains(try #require(IPAddress("9.255.255.255"))))
        #expect(!p.contains(try #require(IPAddress("::ffff:10.0.0.1"))))  // other family
        let all4 = try #require(IPPrefix("0.0.0.0/0"))
        #expect(all4.contains(try #require(IPAddress("255.255.255.255"))))
        #expect(!all4.contains(try #require(IPAddress("::"))))
        let v6 = try #require(IPPrefix("2001:db8::/32"))
        #expect(v6.contains(try #require(IPAddress("2001:db8:ffff::1"))))
        #expect(!v6.contains(try #require(IPAddress("2001:db9::"))))
        #expect(!v6.contains(try #require(IPAddress("32.1.13.184"))))  // same leading bytes, v4
        let host = try #require(IPPrefix("10.0.0.7"))
        #expect(host.contains(try #require(IPAddress("10.0.0.7"))))
        #expect(!host.contains(try #require(IPAddress("10.0.0.6"))))
    }

    @Test func codableAsJSONString() throws {
        let prefixes = ["10.0.0.2/24", "2001:db8::/32", "0.0.0.0/0"].compactMap(IPPrefix.init)
        let enc = JSONEncoder()
        enc.outputFormatting = [.withoutEscapingSlashes]
        let json = try enc.encode(prefixes)
        #expect(String(decoding: json, as: UTF8.self) == #"["10.0.0.2/24","2001:db8::/32","0.0.0.0/0"]"#)
        let back = try JSONDecoder().decode([IPPrefix].self, from: json)
        #expect(back == prefixes)
        #expect(back[0].address == IPAddress("10.0.0.2"))  // host bits survive
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([IPPrefix].self, from: Data(#"["10.0.0.0/33"]"#.utf8)) }
    }
}

@Suite struct MACAddressTests {
    @Test func parsePrintsLowercase() throws {
        let m = try #require(MACAddress("02:AB:cd:00:00:01"))
        #expect(m.description == "02:ab:cd:00:00:01")
        #expect(m.bytes == [0x02, 0xab, 0xcd, 0x00, 0x00, 0x01])
        #expect(m.rawValue == 0x02AB_CD00_0001)
        #expect(MACAddress(bytes: m.bytes) == m)
        #expect(MACAddress("02-ab-cd-00-00-01") == m)
        #expect(MACAddress.zero.description == "00:00:00:00:00:00")
    }

    @Test(arguments: [
        "02:ab:cd:00:00", "zz:ab:cd:00:00:01", "02:ab:cd:00:00:01:02", "", "02:ab:cd:00:00:1",
        "02:ab:cd:00:00:001", "02abcd000001", "02:ab:cd:00:00:0g", "02:ab:cd:00:00:01 ",
        "02:ab:cd::00:01", "002:ab:cd:00:0:1",
    ])
    func rejects(text: String) {
        #expect(MACAddress(text) == nil)
    }

    /// `UInt8("+1", radix: 16)` is 1, so a sign sneaks through the two-character check.
    @Test func rejectsSignedOctet() {
        #expect(MACAddress("02:ab:cd:00:00:+1") == nil)
    }

    @Test func bytesAndRawValueBounds() {
        #expect(MACAddress(bytes: [1, 2, 3, 4, 5]) == nil)
        #expect(MACAddress(bytes: [1, 2, 3, 4, 5, 6, 7]) == nil)
        #expect(MACAddress(rawValue: 1 << 48) == nil)
        #expect(MACAddress(rawValue: (1 << 48) - 1)?.description == "ff:ff:ff:ff:ff:ff")
    }

    @Test func multicastAndLocalBits() throws {
        #expect(try #require(MACAddress("01:00:5e:00:00:01")).isMulticast)
        #expect(try #require(MACAddress("33:33:00:00:00:01")).isMulticast)
        #expect(try #require(MACAddress("ff:ff:ff:ff:ff:ff")).isMulticast)
        #expect(!(try #require(MACAddress("02:ab:cd:00:00:01")).isMulticast))
        #expect(!(try #require(MACAddress("00:00:00:00:00:01")).isMulticast))
        #expect(try #require(MACAddress("02:00:00:00:00:00")).isLocallyAdministered)
        #expect(!(try #require(MACAddress("00:1b:21:00:00:00")).isLocallyAdministered))
    }

    @Test func codableAsJSONString() throws {
        let macs = ["02:AB:cd:00:00:01", "ff:ff:ff:ff:ff:ff"].compactMap(MACAddress.init)
        let json = try JSONEncoder().encode(macs)
        #expect(String(decoding: json, as: UTF8.self) == #"["02:ab:cd:00:00:01","ff:ff:ff:ff:ff:ff"]"#)
        #expect(try JSONDecoder().decode([MACAddress].self, from: json) == macs)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([MACAddress].self, from: Data(#"["02:ab"]"#.utf8)) }
    }
}
