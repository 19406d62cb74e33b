/// IPsec (XFRM) states and policies as plain values, named as `ip xfrm` names them.
///
/// What meshd's encrypted overlays program, per pair of nodes A → B and for each direction:
///
/// - an **SA** (`XFRMState`): ESP in transport mode, AES-GCM-128 as `rfc4106(gcm(aes))` (a 16-byte
///   key followed by a 4-byte salt, ICV 16 bytes), identified by (destination, SPI, ESP) and tied to
///   its policies by `reqid`;
/// - **policies** (`XFRMPolicy`) whose selector matches only the overlay's VXLAN traffic
///   (`XFRMSelector.vxlan`: UDP to port 4789 between the two underlay addresses): `out` on the
///   sender, `in` (and `fwd` when the traffic is routed through the node) on the receiver, each
///   with one template that requires ESP with that reqid.
///
/// A policy with a template but no matching state does not fall back to cleartext: the kernel
/// drops the packet (out: no SA to encrypt with; in: the packet was not protected). That is the
/// XFRM half of failing closed; the nftables rule that drops unprotected VXLAN of a secure VNI is
/// the other half and lives in the dataplane.

/// The IPsec protocol of a state or template. meshd programs ESP only.
public enum XFRMProtocol: UInt8, Sendable, Hashable, CustomStringConvertible {
    case esp = 50  // IPPROTO_ESP
    public var description: String { "esp" }
}

/// XFRM_MODE_*: transport protects the packet's payload in place (what meshd uses between two
/// underlay addresses); tunnel wraps the whole packet in a new IP header.
public enum XFRMMode: UInt8, Sendable, Hashable, CustomStringConvertible {
    case transport = 0
    case tunnel = 1
    public var description: String { self == .transport ? "transport" : "tunnel" }
}

/// An XFRM mark (`struct xfrm_mark`): a state or policy applies only to packets whose
/// `skb->mark & mask == value`. No mark (nil) matches every packet, which is what meshd uses
/// unless nftables marks the packets of one secure VNI.
public struct XFRMMark: Sendable, Hashable, CustomStringConvertible {
    public var value: UInt32
    public var mask: UInt32
    public init(_ value: UInt32, mask: UInt32 = .max) {
        self.value = value
        self.mask = mask
    }
    public var description: String { "mark 0x\(String(value, radix: 16))/0x\(String(mask, radix: 16))" }
}

/// The upper-layer protocol a selector matches (`xfrm_selector.proto`); `.any` is 0.
public struct XFRMUpperProtocol: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let any = XFRMUpperProtocol(rawValue: 0)
    public static let icmp = XFRMUpperProtocol(rawValue: 1)
    public static let tcp = XFRMUpperProtocol(rawValue: 6)
    public static let udp = XFRMUpperProtocol(rawValue: 17)
    public var description: String {
        switch rawValue {
        case 0: "any"
        case 1: "icmp"
        case 6: "tcp"
        case 17: "udp"
        default: "\(rawValue)"
        }
    }
}

/// Which packets a policy (or a state) applies to (`struct xfrm_selector`): source and
/// destination prefixes, the upper-layer protocol and, for TCP/UDP, exact ports (nil: any port).
public struct XFRMSelector: Sendable, Hashable, CustomStringConvertible {
    public var source: IPPrefix
    public var destination: IPPrefix
    public var upperProtocol: XFRMUpperProtocol
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?

    public init(
        source: IPPrefix, destination: IPPrefix, upperProtocol: XFRMUpperProtocol = .any, sourcePort: UInt16? = nil,
        destinationPort: UInt16? = nil
    ) {
        self.source = source
        self.destination = destination
        self.upperProtocol = upperProtocol
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
    }

    /// The VXLAN packets from one underlay address to another: UDP to `port` (any source port,
    /// which VXLAN hashes per flow). The selector of meshd's overlay policies.
    public static func vxlan(from source: IPAddress, to destination: IPAddress, port: UInt16 = 4789) -> XFRMSelector {
        XFRMSelector(source: .host(source), destination: .host(destination), upperProtocol: .udp, destinationPort: port)
    }

    public var family: UInt8 { source.address.family }

    /// In `ip xfrm policy` words: `src 10.1.0.1/32 dst 10.1.0.2/32 proto udp dport 4789`.
    public var description: String {
        var s = "src \(source) dst \(destination)"
        if upperProtocol != .any { s += " proto \(upperProtocol)" }
        if let p = sourcePort { s += " sport \(p)" }
        if let p = destinationPort { s += " dport \(p)" }
        return s
    }
}

/// An AEAD algorithm with its key (`struct xfrm_algo_aead`). The key is secret: `description`
/// never prints it, and neither does any error MeshKernel builds.
public struct XFRMAEAD: Sendable, Hashable, CustomStringConvertible {
    /// The kernel crypto API name, e.g. `rfc4106(gcm(aes))`.
    public var name: String
    /// The key as the kernel takes it; for rfc4106 the AES key followed by the 4-byte salt.
    public var key: [UInt8]
    /// Length of the integrity check value in bits (64, 96 or 128 for rfc4106).
    public var icvBits: UInt32

    public init(name: String, key: [UInt8], icvBits: UInt32) {
        self.name = name
        self.key = key
        self.icvBits = icvBits
    }

    public static let rfc4106Name = "rfc4106(gcm(aes))"

    /// AES-GCM-128 for ESP (RFC 4106): a 16-byte key and a 4-byte salt, 16-byte ICV, as Docker's
    /// encrypted overlay uses. Refuses keys or salts of the wrong length.
    public static func aesGCM128(key: [UInt8], salt: [UInt8]) throws(KernelError) -> XFRMAEAD {
        guard key.count == 16 else { throw .invalidArgument("AES-GCM-128 key must be 16 bytes, got \(key.count)") }
        guard salt.count == 4 else { throw .invalidArgument("rfc4106 salt must be 4 bytes, got \(salt.count)") }
        return XFRMAEAD(name: rfc4106Name, key: key + salt, icvBits: 128)
    }

    public var description: String { "aead \(name) (\(key.count * 8)-bit key hidden) \(icvBits)" }
}

/// What identifies one SA in the kernel: destination, SPI and protocol, plus the mark it was
/// installed with (a marked state is invisible to an unmarked lookup). The source narrows the
/// lookup as `ip xfrm state delete src …` does.
public struct XFRMStateID: Sendable, Hashable, CustomStringConvertible {
    public var source: IPAddress?
    public var destination: IPAddress
    public var spi: UInt32
    public var proto: XFRMProtocol
    public var mark: XFRMMark?

    public init(source: IPAddress?, destination: IPAddress, spi: UInt32, proto: XFRMProtocol = .esp, mark: XFRMMark? = nil) {
        self.source = source
        self.destination = destination
        self.spi = spi
        self.proto = proto
        self.mark = mark
    }

    public var description: String {
        (source.map { "src \($0) " } ?? "") + "dst \(destination) proto \(proto) spi \(XFRMState.spiText(spi))"
            + (mark.map { " \($0)" } ?? "")
    }
}

/// One security association (`ip xfrm state add …`). Source and destination are the underlay
/// addresses of the sending and the receiving node; both nodes install the same value (same SPI,
/// same key): the sender uses it to encrypt, the receiver to decrypt.
public struct XFRMState: Sendable, Hashable, CustomStringConvertible {
    public var source: IPAddress
    public var destination: IPAddress
    /// Security Parameter Index, chosen by whoever distributes keys; unique per destination.
    /// 1–255 are reserved (RFC 4303) and 0 means "none", so it must be at least 256.
    public var spi: UInt32
    public var proto: XFRMProtocol
    public var mode: XFRMMode
    /// Ties the state to the templates of its policies (`XFRMTemplate.reqid`).
    public var reqid: UInt32
    public var aead: XFRMAEAD
    /// Anti-replay window in packets (0 turns replay protection off).
    public var replayWindow: UInt8
    public var mark: XFRMMark?
    /// Packets the state may protect; nil (what iproute2 sends when no `sel` is given) is any,
    /// leaving the choice to the policies.
    public var selector: XFRMSelector?

    public init(
        source: IPAddress, destination: IPAddress, spi: UInt32, reqid: UInt32, aead: XFRMAEAD, proto: XFRMProtocol = .esp,
        mode: XFRMMode = .transport, replayWindow: UInt8 = 32, mark: XFRMMark? = nil, selector: XFRMSelector? = nil
    ) {
        self.source = source
        self.destination = destination
        self.spi = spi
        self.proto = proto
        self.mode = mode
        self.reqid = reqid
        self.aead = aead
        self.replayWindow = replayWindow
        self.mark = mark
        self.selector = selector
    }

    public var id: XFRMStateID { XFRMStateID(source: source, destination: destination, spi: spi, proto: proto, mark: mark) }

    public static func spiText(_ spi: UInt32) -> String {
        let h = String(spi, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - h.count)) + h
    }

    /// In `ip xfrm state` words, without the key.
    public var description: String {
        "src \(source) dst \(destination) proto \(proto) spi \(Self.spiText(spi)) reqid \(reqid) mode \(mode)"
            + (mark.map { " \($0)" } ?? "")
    }
}

/// Counters of one state as the kernel reports them.
public struct XFRMStateCounters: Sendable, Hashable {
    public var bytes: UInt64 = 0
    public var packets: UInt64 = 0
    /// When the state was added and last used, in seconds since the epoch (0: never used).
    public var addTime: UInt64 = 0
    public var useTime: UInt64 = 0
    /// Packets dropped: outside the replay window, replayed, failed the ICV check.
    public var replayWindowDrops: UInt32 = 0
    public var replayDrops: UInt32 = 0
    public var integrityFailures: UInt32 = 0
    /// Last sequence number sent and highest received (XFRMA_REPLAY_VAL), when reported.
    public var outboundSequence: UInt32 = 0
    public var inboundSequence: UInt32 = 0
    public init() {}
}

/// A state as listed: the value plus what the kernel counts for it.
public struct XFRMStateEntry: Sendable, Hashable {
    public var state: XFRMState
    public var counters: XFRMStateCounters
}

/// XFRM_POLICY_IN / OUT / FWD: `out` applies to packets this namespace sends, `in` to packets
/// delivered to it, `fwd` to packets it routes onward.
public enum XFRMDirection: UInt8, Sendable, Hashable, CustomStringConvertible, CaseIterable {
    case `in` = 0
    case out = 1
    case forward = 2
    public var description: String {
        switch self {
        case .in: "in"
        case .out: "out"
        case .forward: "fwd"
        }
    }
}

/// XFRM_POLICY_ALLOW / BLOCK. `allow` with templates means "allow, but only through these SAs".
public enum XFRMPolicyAction: UInt8, Sendable, Hashable, CustomStringConvertible {
    case allow = 0
    case block = 1
    public var description: String { self == .allow ? "allow" : "block" }
}

/// One `tmpl` of a policy (`struct xfrm_user_tmpl`): which SA must protect the packet.
/// For `out`, the kernel picks the state with this reqid, mode, protocol and addresses, and this
/// SPI unless it is 0. For `in`/`fwd`, an SPI of 0 accepts any state with the reqid, which is
/// what lets old and new SAs both be accepted during a key rotation.
public struct XFRMTemplate: Sendable, Hashable, CustomStringConvertible {
    public var source: IPAddress
    public var destination: IPAddress
    public var proto: XFRMProtocol
    /// 0: any SPI.
    public var spi: UInt32
    public var reqid: UInt32
    public var mode: XFRMMode
    /// true is `level use` (protection optional): never for meshd, whose templates are required.
    public var optional: Bool

    public init(
        source: IPAddress, destination: IPAddress, reqid: UInt32, spi: UInt32 = 0, proto: XFRMProtocol = .esp,
        mode: XFRMMode = .transport, optional: Bool = false
    ) {
        self.source = source
        self.destination = destination
        self.proto = proto
        self.spi = spi
        self.reqid = reqid
        self.mode = mode
        self.optional = optional
    }

    public var description: String {
        "tmpl src \(source) dst \(destination) proto \(proto)" + (spi != 0 ? " spi \(XFRMState.spiText(spi))" : "")
            + " reqid \(reqid) mode \(mode)" + (optional ? " level use" : "")
    }
}

/// What identifies a policy: its selector, direction and mark (`struct xfrm_userpolicy_id` with
/// index 0, plus XFRMA_MARK).
public struct XFRMPolicyID: Sendable, Hashable, CustomStringConvertible {
    public var selector: XFRMSelector
    public var direction: XFRMDirection
    public var mark: XFRMMark?

    public init(selector: XFRMSelector, direction: XFRMDirection, mark: XFRMMark? = nil) {
        self.selector = selector
        self.direction = direction
        self.mark = mark
    }

    public var description: String { "\(selector) dir \(direction)" + (mark.map { " \($0)" } ?? "") }
}

/// One policy (`ip xfrm policy add …`).
public struct XFRMPolicy: Sendable, Hashable, CustomStringConvertible {
    public var selector: XFRMSelector
    public var direction: XFRMDirection
    /// Lower wins when several policies match one packet.
    public var priority: UInt32
    public var action: XFRMPolicyAction
    public var mark: XFRMMark?
    /// The SAs a matching packet must go through, outermost last; at most 6 (XFRM_MAX_DEPTH).
    public var templates: [XFRMTemplate]

    public init(
        selector: XFRMSelector, direction: XFRMDirection, templates: [XFRMTemplate], priority: UInt32 = 0,
        action: XFRMPolicyAction = .allow, mark: XFRMMark? = nil
    ) {
        self.selector = selector
        self.direction = direction
        self.priority = priority
        self.action = action
        self.mark = mark
        self.templates = templates
    }

    public var id: XFRMPolicyID { XFRMPolicyID(selector: selector, direction: direction, mark: mark) }

    public var description: String {
        "\(selector) dir \(direction) priority \(priority)" + (action == .block ? " action block" : "")
            + (mark.map { " \($0)" } ?? "") + templates.map { " \($0)" }.joined()
    }
}

/// A policy as listed: the value plus the index the kernel gave it and its counters.
public struct XFRMPolicyEntry: Sendable, Hashable {
    public var policy: XFRMPolicy
    public var index: UInt32
    public var bytes: UInt64
    public var packets: UInt64
}

/// One change, for `XFRMHandle.apply`.
public enum XFRMOperation: Sendable, Hashable {
    case stateAdd(XFRMState)
    case stateUpdate(XFRMState)
    case stateDelete(XFRMStateID)
    case policyAdd(XFRMPolicy)
    case policyUpdate(XFRMPolicy)
    case policyDelete(XFRMPolicyID)
}
