/// A domain name held in its uncompressed wire form (length-prefixed labels ending in a zero byte),
/// exactly as the peer spelled it. Equality and hashing ignore ASCII case (RFC 4343), so the name
/// can key a table while the original spelling is still there to echo back.
public struct DNSName: Sendable, Hashable, CustomStringConvertible {
    /// Wire form, at most 255 bytes, always ending in the root label.
    public private(set) var wire: [UInt8]

    public static let maxWireLength = 255
    public static let root = DNSName(uncheckedWire: [0])

    init(uncheckedWire: [UInt8]) { wire = uncheckedWire }

    /// Parses dotted text ("web.frontend", "web.frontend."). No escapes: a name the store is given
    /// comes from service and network names, which never contain dots inside a label.
    public init?(_ text: String) {
        var w: [UInt8] = []
        w.reserveCapacity(text.utf8.count + 2)
        let trimmed = text.hasSuffix(".") ? Substring(text.dropLast()) : Substring(text)
        if !trimmed.isEmpty {
            for label in trimmed.split(separator: ".", omittingEmptySubsequences: false) {
                let bytes = Array(label.utf8)
                guard !bytes.isEmpty, bytes.count <= 63 else { return nil }
                w.append(UInt8(bytes.count))
                w.append(contentsOf: bytes)
            }
        }
        w.append(0)
        guard w.count <= Self.maxWireLength else { return nil }
        wire = w
    }

    /// Labels, as byte slices of the wire form.
    public var labels: [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var i = 0
        while i < wire.count, wire[i] != 0 {
            let n = Int(wire[i])
            out.append(wire[(i + 1)..<(i + 1 + n)])
            i += 1 + n
        }
        return out
    }

    public var labelCount: Int { labels.count }

    /// The name with its first `n` labels removed (the parent zone for n = 1).
    public func dropping(labels n: Int) -> DNSName {
        var i = 0
        for _ in 0..<n {
            guard wire[i] != 0 else { break }
            i += 1 + Int(wire[i])
        }
        return DNSName(uncheckedWire: Array(wire[i...]))
    }

    /// Start of the last label in `wire`, or nil for the root.
    private var lastLabelStart: Int? {
        var i = 0, last: Int?
        while wire[i] != 0 {
            last = i
            i += 1 + Int(wire[i])
        }
        return last
    }

    /// Is the last label `text`, ignoring ASCII case?
    public func lastLabelIs(_ text: String) -> Bool {
        guard let at = lastLabelStart else { return false }
        let label = wire[(at + 1)..<(at + 1 + Int(wire[at]))]
        return Self.equalFolded(label, ArraySlice(text.utf8))
    }

    /// The name without its last label ("web.front" → "web").
    public var droppingLastLabel: DNSName {
        guard let at = lastLabelStart else { return self }
        return DNSName(uncheckedWire: Array(wire[..<at]) + [0])
    }

    /// The first label as text (lossy for non-UTF-8 bytes).
    public var firstLabel: String? {
        guard wire[0] != 0 else { return nil }
        return String(decoding: wire[1..<(1 + Int(wire[0]))], as: UTF8.self)
    }

    /// Lowercased wire form: the key the record store matches on.
    public var lowercasedWire: [UInt8] { wire.map(Self.lower) }

    /// Lowercase name, "." for the root, otherwise no trailing dot.
    public var text: String {
        if wire.count == 1 { return "." }
        return labels.map { label in
            String(
                decoding: label.flatMap { b -> [UInt8] in
                    // Escape what would make the text ambiguous or unprintable (RFC 4343 style).
                    if b == UInt8(ascii: ".") || b == UInt8(ascii: "\\") { return [UInt8(ascii: "\\"), b] }
                    if b < 0x21 || b > 0x7E {
                        let d = Array(String(b).utf8)
                        return [UInt8(ascii: "\\")] + Array(repeating: UInt8(ascii: "0"), count: 3 - d.count) + d
                    }
                    return [b]
                }, as: UTF8.self)
        }.joined(separator: ".")
    }

    public var description: String { text }

    /// Does this name end with `suffix` (case-insensitively, on label boundaries)?
    public func isSubdomain(of suffix: DNSName) -> Bool {
        let a = labels, b = suffix.labels
        guard a.count >= b.count else { return false }
        for (x, y) in zip(a.suffix(b.count), b) where !Self.equalFolded(x, y) { return false }
        return true
    }

    /// `prefix` + "." + self.
    public func prepending(_ label: String) -> DNSName? {
        let bytes = Array(label.utf8)
        guard !bytes.isEmpty, bytes.count <= 63, wire.count + bytes.count + 1 <= Self.maxWireLength else { return nil }
        return DNSName(uncheckedWire: [UInt8(bytes.count)] + bytes + wire)
    }

    public static func == (a: DNSName, b: DNSName) -> Bool {
        a.wire.count == b.wire.count && equalFolded(a.wire[...], b.wire[...])
    }

    public func hash(into h: inout Hasher) {
        for b in wire { h.combine(Self.lower(b)) }
    }

    @inline(__always) static func lower(_ b: UInt8) -> UInt8 {
        (b >= 0x41 && b <= 0x5A) ? b | 0x20 : b
    }

    static func equalFolded(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { lower($0) == lower($1) }
    }
}
