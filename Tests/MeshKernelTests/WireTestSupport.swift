// Shared helpers for the unit tests: hand-made netlink TLVs, little-endian integers, hex dumps
// for failure messages, and a deterministic PRNG for the fuzz suite.
@testable import MeshKernel
import Testing

// MARK: - Little-endian / network-order byte helpers

func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
func le32(_ v: Int32) -> [UInt8] { le32(UInt32(bitPattern: v)) }
func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
func cString(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

/// One netlink attribute: `nla_len` (header + value, unpadded), `nla_type`, value, zero padding to 4.
func tlv(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
    var out = le16(UInt16(4 + value.count)) + le16(type) + value
    while out.count % 4 != 0 { out.append(0) }
    return out
}
func tlv(_ type: UInt16, u8 v: UInt8) -> [UInt8] { tlv(type, [v]) }
func tlv(_ type: UInt16, u32 v: UInt32) -> [UInt8] { tlv(type, le32(v)) }
func tlv(_ type: UInt16, string s: String) -> [UInt8] { tlv(type, cString(s)) }
func nest(_ type: UInt16, _ children: [UInt8]...) -> [UInt8] { tlv(type, children.flatMap { $0 }) }

func hex(_ bytes: some Collection<UInt8>) -> String {
    bytes.enumerated().map { i, b in
        let s = String(b, radix: 16)
        return (i > 0 && i % 4 == 0 ? " | " : i > 0 ? " " : "") + (s.count == 1 ? "0" + s : s)
    }.joined()
}

/// `#expect(actual == expected)` that prints both sides as hex and the first differing offset.
func expectBytes(_ actual: [UInt8], _ expected: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual != expected else { return }
    let firstDiff = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(actual.count, expected.count)
    Issue.record(
        """
        bytes differ at offset \(firstDiff) (actual \(actual.count) B, expected \(expected.count) B)
          actual:   \(hex(actual))
          expected: \(hex(expected))
        """, sourceLocation: sourceLocation)
}

// MARK: - Deterministic PRNG

/// Draws the fuzz tests need, over MeshKernel's `SplitMix64`.
extension SplitMix64 {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in byte() } }
    mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }
}
