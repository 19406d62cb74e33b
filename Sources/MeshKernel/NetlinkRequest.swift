import CNetlink

/// A request before the socket gives it a sequence number: message type, NLM_F_* flags (other
/// than REQUEST and ACK, which the socket adds) and the bytes after `nlmsghdr`.
/// `operation` says, in iproute2 words, what the request does; errors quote it. It is formatted
/// only when asked for: a batch of 10,000 neighbours should not print 10,000 MAC addresses.
public struct NetlinkRequest: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var body: [UInt8]
    let label: @Sendable () -> String
    public var operation: String { label() }

    public init(type: UInt16, flags: UInt16, body: [UInt8], operation: @autoclosure @escaping @Sendable () -> String) {
        self.type = type
        self.flags = flags
        self.body = body
        self.label = operation
    }

    /// Requests are equal when they would put the same bytes on the wire.
    public static func == (a: Self, b: Self) -> Bool { a.type == b.type && a.flags == b.flags && a.body == b.body }

    public var isDump: Bool { flags & UInt16(NLM_F_DUMP) == UInt16(NLM_F_DUMP) }
}

/// NLM_F_* combinations for the iproute2 verbs.
public enum NetlinkVerb: Sendable {
    case add, replace, append, change, delete, get, dump

    var flags: UInt16 {
        switch self {
        case .add: return UInt16(NLM_F_CREATE | NLM_F_EXCL)
        case .replace: return UInt16(NLM_F_CREATE | NLM_F_REPLACE)
        case .append: return UInt16(NLM_F_CREATE | NLM_F_APPEND)
        case .change, .delete, .get: return 0
        case .dump: return UInt16(NLM_F_DUMP)
        }
    }

    /// The word iproute2 uses for a change (`ip route replace`, `bridge fdb append`), for error labels.
    var word: String {
        switch self {
        case .add: return "add"
        case .replace: return "replace"
        case .append: return "append"
        case .change: return "set"
        case .delete: return "del"
        case .get, .dump: return "show"
        }
    }
}

/// Builds one request with libnl's message API: nlmsg_alloc_simple, nlmsg_append for the family
/// header, nla_put / nla_nest_start / nla_nest_end for attributes. The first libnl failure is
/// kept and reported by `finish()`, so call sites read as a straight list of attributes.
final class RequestBuilder {
    private let msg: OpaquePointer?
    private let operation: @Sendable () -> String
    private var failure: KernelError?

    /// Room for the largest request meshd sends (a veth or vxlan add is under 200 bytes);
    /// libnl's default is a zeroed page per message, which shows up in a 10,000-entry batch.
    static let capacity = 1024

    init(type: Int, verb: NetlinkVerb, operation: @autoclosure @escaping @Sendable () -> String) {
        self.operation = operation
        msg = nlmsg_alloc_size(Self.capacity)
        guard let msg else {
            failure = .libnl(operation: operation(), code: NLE_NOMEM, text: "cannot allocate message")
            return
        }
        if nlmsg_put(msg, UInt32(NL_AUTO_PORT), UInt32(NL_AUTO_SEQ), Int32(type), 0, Int32(verb.flags)) == nil {
            failure = .libnl(operation: operation(), code: NLE_NOMEM, text: "cannot put header")
        }
    }

    deinit { if let msg { nlmsg_free(msg) } }

    private func check(_ rc: Int32) {
        guard rc < 0, failure == nil else { return }
        failure = .libnl(operation: operation(), code: -rc, text: String(cString: nl_geterror(rc)))
    }

    /// The fixed family header (ifinfomsg, ndmsg, ...), padded to 4 bytes.
    func header<T>(_ value: T) {
        guard let msg else { return }
        var v = value
        check(withUnsafeMutableBytes(of: &v) { nlmsg_append(msg, $0.baseAddress, $0.count, Int32(NLMSG_ALIGNTO)) })
    }

    /// A fixed family header laid out byte by byte (XFRM's structs have padding a Swift copy of
    /// the imported C struct would not keep zeroed), padded to 4 bytes.
    func header(bytes: [UInt8]) {
        guard let msg else { return }
        check(
            bytes.withUnsafeBytes { nlmsg_append(msg, UnsafeMutableRawPointer(mutating: $0.baseAddress), $0.count, Int32(NLMSG_ALIGNTO)) })
    }

    func put(_ type: Int, bytes: [UInt8]) {
        guard let msg else { return }
        check(bytes.withUnsafeBytes { nla_put(msg, Int32(type), Int32($0.count), $0.baseAddress) })
    }
    func put(_ type: Int, u8 v: UInt8) { put(type, bytes: [v]) }
    func put(_ type: Int, u16 v: UInt16) { put(type, bytes: [UInt8(v & 0xff), UInt8(v >> 8)]) }
    func put(_ type: Int, u32 v: UInt32) {
        guard let msg else { return }
        check(nla_put_u32(msg, Int32(type), v))
    }
    func put(_ type: Int, be16 v: UInt16) { put(type, u16: v.bigEndian) }
    func put(_ type: Int, string: String) {
        guard let msg else { return }
        check(nla_put_string(msg, Int32(type), string))
    }
    func put(_ type: Int, address: IPAddress) { put(type, bytes: address.bytes) }
    func put(_ type: Int, mac: MACAddress) { put(type, bytes: mac.bytes) }

    func nest(_ type: Int, _ body: () -> Void) {
        guard let msg else { return }
        guard let start = nla_nest_start(msg, Int32(type)) else {
            check(-NLE_NOMEM)
            return
        }
        body()
        check(nla_nest_end(msg, start))
    }

    func finish() throws(KernelError) -> NetlinkRequest {
        if let failure { throw failure }
        guard let msg, let hdr = nlmsg_hdr(msg) else {
            throw .libnl(operation: operation(), code: NLE_NOMEM, text: "no message")
        }
        let total = Int(hdr.pointee.nlmsg_len)
        let body = UnsafeRawPointer(hdr).withMemoryRebound(to: UInt8.self, capacity: total) {
            Array(UnsafeBufferPointer(start: $0 + NetlinkMessage.headerLength, count: total - NetlinkMessage.headerLength))
        }
        let label = operation
        return NetlinkRequest(type: hdr.pointee.nlmsg_type, flags: hdr.pointee.nlmsg_flags, body: body, operation: label())
    }
}
