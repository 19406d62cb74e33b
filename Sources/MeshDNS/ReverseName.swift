import MeshKernel

/// `4.3.2.1.in-addr.arpa` ↔ 1.2.3.4 and the nibble form under ip6.arpa (RFC 1035 3.5, RFC 3596 2.5).
enum ReverseName {
    static let inAddrArpa = DNSName("in-addr.arpa")!
    static let ip6Arpa = DNSName("ip6.arpa")!

    static func address(from name: DNSName) -> IPAddress? {
        let labels = name.labels
        if name.isSubdomain(of: inAddrArpa), labels.count == 6 {
            var v: UInt32 = 0
            for label in labels[0..<4].reversed() {
                guard label.count <= 3, label.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                    let n = UInt32(String(decoding: label, as: UTF8.self)), n <= 255,
                    label.count == 1 || label.first != 0x30
                else { return nil }
                v = v << 8 | n
            }
            return .v4(v)
        }
        if name.isSubdomain(of: ip6Arpa), labels.count == 34 {
            var bytes = [UInt8](repeating: 0, count: 16)
            for (i, label) in labels[0..<32].reversed().enumerated() {
                guard label.count == 1, let nibble = hexValue(label.first!) else { return nil }
                bytes[i / 2] |= i % 2 == 0 ? nibble << 4 : nibble
            }
            return IPAddress(bytes: bytes)
        }
        return nil
    }

    static func name(for address: IPAddress) -> DNSName {
        let b = address.bytes
        if address.isIPv4 {
            return DNSName(b.reversed().map(String.init).joined(separator: ".") + ".in-addr.arpa")!
        }
        let nibbles = b.flatMap { [$0 >> 4, $0 & 0xF] }.reversed().map { String($0, radix: 16) }
        return DNSName(nibbles.joined(separator: ".") + ".ip6.arpa")!
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}
