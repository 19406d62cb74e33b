/// nftables objects as plain values. A batch (`NFTBatch`) turns them into one kernel
/// transaction; a dump (`NFTSocket.list*`) turns kernel state back into them.

public enum NFTFamily: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case inet = 1, ip = 2, bridge = 7, ip6 = 10
    public var description: String {
        switch self {
        case .inet: "inet"
        case .ip: "ip"
        case .bridge: "bridge"
        case .ip6: "ip6"
        }
    }
}

public struct NFTTable: Sendable, Equatable, Hashable {
    public var family: NFTFamily
    public var name: String
    public init(_ family: NFTFamily, _ name: String) {
        self.family = family
        self.name = name
    }
}

public enum NFTHook: UInt32, Sendable {
    case prerouting = 0, input = 1, forward = 2, output = 3, postrouting = 4
    var word: String { ["prerouting", "input", "forward", "output", "postrouting"][Int(rawValue)] }
}

public enum NFTChainType: String, Sendable { case filter, nat, route }

public enum NFTPolicy: UInt32, Sendable { case drop = 0, accept = 1 }

public struct NFTChain: Sendable, Equatable {
    public struct Base: Sendable, Equatable {
        public var type: NFTChainType
        public var hook: NFTHook
        public var priority: Int32
        public var policy: NFTPolicy
        public init(type: NFTChainType, hook: NFTHook, priority: Int32, policy: NFTPolicy = .accept) {
            self.type = type
            self.hook = hook
            self.priority = priority
            self.policy = policy
        }
    }
    public var table: NFTTable
    public var name: String
    /// nil for a regular chain, reached only by jump/goto.
    public var base: Base?
    public init(_ table: NFTTable, _ name: String, base: Base? = nil) {
        self.table = table
        self.name = name
        self.base = base
    }
}

/// The type of one field of a set key or map value. `id` is nft's datatype number, stored in the
/// kernel so `nft list` prints the values as addresses and ports rather than raw integers.
public enum NFTDataType: Sendable, Equatable {
    case integer(bytes: Int)
    case mark
    case ipv4Address
    case ipv6Address
    case inetProto
    case inetService
    case etherAddress

    var id: UInt32 {
        switch self {
        case .integer: 4
        case .mark: 19
        case .ipv4Address: 7
        case .ipv6Address: 8
        case .inetProto: 12
        case .inetService: 13
        case .etherAddress: 9
        }
    }
    var length: Int {
        switch self {
        case .integer(let n): n
        case .mark: 4
        case .ipv4Address: 4
        case .ipv6Address: 16
        case .inetProto: 1
        case .inetService: 2
        case .etherAddress: 6
        }
    }
    /// Integers and marks live in registers in host order; nft needs to be told to print them right.
    var hostOrder: Bool {
        switch self {
        case .integer, .mark: true
        default: false
        }
    }
}

/// A concatenation of fields, as a set key or map value. Each field takes whole 32-bit
/// registers, which is how the kernel lays concatenations out.
public struct NFTKeyType: Sendable, Equatable {
    public var fields: [NFTDataType]
    public init(_ fields: NFTDataType...) { self.fields = fields }
    public init(fields: [NFTDataType]) { self.fields = fields }

    var length: Int {
        fields.count == 1 ? fields[0].length : fields.reduce(0) { $0 + ($1.length + 3) / 4 * 4 }
    }
    var typeID: UInt32 { fields.reduce(0) { ($0 << 6) | $1.id } }
    var hostOrder: Bool { fields.count == 1 && fields[0].hostOrder }
}

public struct NFTSet: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case set
        case map(NFTKeyType)
        case verdictMap
    }
    public var table: NFTTable
    public var name: String
    public var key: NFTKeyType
    public var kind: Kind
    /// Every element carries a counter (`counter` in the set's declaration) that each lookup
    /// which finds it adds the packet to: per-key traffic for one rule, read back with the elements.
    public var counters: Bool
    public init(_ table: NFTTable, _ name: String, key: NFTKeyType, kind: Kind = .set, counters: Bool = false) {
        self.table = table
        self.name = name
        self.key = key
        self.kind = kind
        self.counters = counters
    }
}

/// What an element's counter has seen since the element was added.
public struct NFTCounter: Sendable, Equatable {
    public var packets: UInt64
    public var bytes: UInt64
    public init(packets: UInt64, bytes: UInt64) {
        self.packets = packets
        self.bytes = bytes
    }
}

/// A key or map value as the kernel stores it: network order for addresses and ports, host
/// order for integers and marks, concatenated fields padded to 4 bytes each.
public struct NFTValue: Sendable, Hashable, CustomStringConvertible {
    public var bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }

    public static func address(_ a: IPAddress) -> NFTValue { NFTValue(bytes: a.bytes) }
    public static func mac(_ m: MACAddress) -> NFTValue { NFTValue(bytes: m.bytes) }
    public static func port(_ p: UInt16) -> NFTValue { NFTValue(bytes: [UInt8(p >> 8), UInt8(p & 0xff)]) }
    public static func proto(_ p: UInt8) -> NFTValue { NFTValue(bytes: [p]) }
    /// An interface name as `meta iifname`/`oifname` loads it: NUL-padded to IFNAMSIZ.
    public static func ifname(_ name: String) -> NFTValue {
        let b = Array(name.utf8.prefix(15))
        return NFTValue(bytes: b + [UInt8](repeating: 0, count: 16 - b.count))
    }
    public static func u32(_ v: UInt32) -> NFTValue { withUnsafeBytes(of: v) { NFTValue(bytes: Array($0)) } }
    /// Each part padded to a multiple of 4 bytes: the register layout of a concatenation.
    public static func concat(_ parts: NFTValue...) -> NFTValue { concat(parts) }
    public static func concat(_ parts: [NFTValue]) -> NFTValue {
        var b: [UInt8] = []
        for p in parts {
            b += p.bytes
            b += [UInt8](repeating: 0, count: (4 - p.bytes.count % 4) % 4)
        }
        return NFTValue(bytes: b)
    }
    public var description: String { "0x" + bytes.map { String($0, radix: 16).leftPad(2) }.joined() }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

public enum NFTVerdict: Sendable, Equatable {
    case accept, drop, `continue`, `return`
    case jump(String)
    case goto(String)

    var code: Int32 {
        switch self {
        case .drop: 0
        case .accept: 1
        case .continue: -1
        case .jump: -3
        case .goto: -4
        case .return: -5
        }
    }
    var chain: String? {
        switch self {
        case .jump(let c), .goto(let c): c
        default: nil
        }
    }
    static func from(code: Int32, chain: String?) -> NFTVerdict? {
        switch code {
        case 0: .drop
        case 1: .accept
        case -1: .continue
        case -3: chain.map { .jump($0) }
        case -4: chain.map { .goto($0) }
        case -5: .return
        default: nil
        }
    }
}

public struct NFTElement: Sendable, Equatable {
    public enum Data: Sendable, Equatable {
        case none
        case value(NFTValue)
        case verdict(NFTVerdict)
    }
    public var key: NFTValue
    public var data: Data
    /// Read back only, from a set declared with `counters`; never sent (the kernel gives each
    /// new element its set's counter, starting at zero).
    public var counter: NFTCounter?
    public init(_ key: NFTValue, _ data: Data = .none) {
        self.key = key
        self.data = data
    }
    public static func map(_ key: NFTValue, to value: NFTValue) -> NFTElement { NFTElement(key, .value(value)) }
    public static func map(_ key: NFTValue, to verdict: NFTVerdict) -> NFTElement { NFTElement(key, .verdict(verdict)) }
}

public struct NFTRule: Sendable, Equatable {
    public var chain: NFTChain
    public var expressions: [NFTExpr]
    /// Shown by `nft list` as `comment "..."`; the reconciler keys its rules by it.
    public var comment: String?
    public init(_ chain: NFTChain, _ expressions: [NFTExpr], comment: String? = nil) {
        self.chain = chain
        self.expressions = expressions
        self.comment = comment
    }
}
