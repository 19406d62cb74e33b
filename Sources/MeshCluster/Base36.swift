/// Big-endian byte strings printed in base 36 (digits then lowercase letters), as swarmkit prints
/// object IDs and join-token parts with Go's `big.Int.Text(36)`.
enum Base36 {
    static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)

    /// `bytes` as an unsigned big-endian number in base 36, left-padded with `0` to `width`.
    static func encode(_ bytes: [UInt8], width: Int) -> String {
        var number = Array(bytes.drop { $0 == 0 })
        var digits: [UInt8] = []
        // Schoolbook division by 36; inputs are at most 32 bytes, so quadratic cost is negligible.
        while !number.isEmpty {
            var remainder = 0
            var quotient: [UInt8] = []
            quotient.reserveCapacity(number.count)
            for byte in number {
                let value = remainder << 8 | Int(byte)
                let q = value / 36
                remainder = value % 36
                if !quotient.isEmpty || q != 0 { quotient.append(UInt8(q)) }
            }
            digits.append(alphabet[remainder])
            number = quotient
        }
        if digits.count < width { digits.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - digits.count)) }
        return String(decoding: digits.reversed(), as: UTF8.self)
    }

    static func isBase36(_ text: Substring) -> Bool {
        text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 122) }
    }
}
