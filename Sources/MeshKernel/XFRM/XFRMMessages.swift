import CNetlink

/// Encoders and decoders for NETLINK_XFRM (linux/xfrm.h). Requests are built with libnl; the
/// fixed structs (`xfrm_usersa_info`, `xfrm_userpolicy_info`, …) are laid out byte by byte at the
/// offsets of the uapi header (the unit tests hold each size and offset against the imported C
/// structs), so padding is always zero and the bytes equal what iproute2 sends for the same
/// command. Addresses, ports and SPIs are network order; everything else host order.
enum XFRMMessages {
    // Sizes of the uapi structs on 64-bit Linux.
    static let addressSize = 16  // xfrm_address_t
    static let selectorSize = 56  // struct xfrm_selector
    static let stateInfoSize = 224  // struct xfrm_usersa_info
    static let stateIDSize = 24  // struct xfrm_usersa_id
    static let policyInfoSize = 168  // struct xfrm_userpolicy_info
    static let policyIDSize = 64  // struct xfrm_userpolicy_id
    static let templateSize = 64  // struct xfrm_user_tmpl
    static let aeadHeaderSize = 72  // struct xfrm_algo_aead without the key
    static let maxTemplates = 6  // XFRM_MAX_DEPTH

    // MARK: - fixed structs

    static func address(_ w: inout ByteWriter, _ a: IPAddress?) {
        let b = a?.bytes ?? []
        w.append(b)
        w.append([UInt8](repeating: 0, count: addressSize - b.count))
    }

    static func be16(_ w: inout ByteWriter, _ v: UInt16) { w.append([UInt8(v >> 8), UInt8(v & 0xff)]) }
    static func be32(_ w: inout ByteWriter, _ v: UInt32) { w.append((0..<4).map { UInt8(truncatingIfNeeded: v >> (24 - 8 * $0)) }) }
    static func u64(_ w: inout ByteWriter, _ v: UInt64) {
        w.u32(UInt32(truncatingIfNeeded: v))
        w.u32(UInt32(truncatingIfNeeded: v >> 32))
    }
    static func zeros(_ w: inout ByteWriter, _ n: Int) { w.append([UInt8](repeating: 0, count: n)) }

    /// struct xfrm_selector (56 B); nil is the all-zero "any" selector of family AF_UNSPEC.
    static func selector(_ w: inout ByteWriter, _ s: XFRMSelector?) {
        guard let s else { return zeros(&w, selectorSize) }
        address(&w, s.destination.address)
        address(&w, s.source.address)
        be16(&w, s.destinationPort ?? 0)
        be16(&w, s.destinationPort == nil ? 0 : 0xffff)
        be16(&w, s.sourcePort ?? 0)
        be16(&w, s.sourcePort == nil ? 0 : 0xffff)
        w.u16(UInt16(s.family))
        w.u8(UInt8(s.destination.length))
        w.u8(UInt8(s.source.length))
        w.u8(s.upperProtocol.rawValue)
        zeros(&w, 3)  // padding to the int ifindex
        w.u32(0)  // ifindex: any
        w.u32(0)  // user
    }

    /// struct xfrm_lifetime_cfg (64 B) as iproute2 fills it: byte and packet limits infinite
    /// (XFRM_INF), no time limits. All-zero limits would expire the state on its first packet.
    static func lifetime(_ w: inout ByteWriter) {
        for _ in 0..<4 { u64(&w, .max) }
        for _ in 0..<4 { u64(&w, 0) }
    }

    /// struct xfrm_usersa_info (224 B).
    static func stateInfo(_ s: XFRMState) -> [UInt8] {
        var w = ByteWriter()
        selector(&w, s.selector)
        // struct xfrm_id (24 B)
        address(&w, s.destination)
        be32(&w, s.spi)
        w.u8(s.proto.rawValue)
        zeros(&w, 3)
        address(&w, s.source)  // saddr
        lifetime(&w)
        zeros(&w, 32)  // curlft
        zeros(&w, 12)  // stats
        w.u32(0)  // seq
        w.u32(s.reqid)
        w.u16(UInt16(s.destination.family))
        w.u8(s.mode.rawValue)
        w.u8(s.replayWindow)
        w.u8(0)  // flags
        zeros(&w, 7)  // padding to the 8-byte alignment of the lifetimes
        return w.bytes
    }

    /// struct xfrm_usersa_id (24 B).
    static func stateID(_ id: XFRMStateID) -> [UInt8] {
        var w = ByteWriter()
        address(&w, id.destination)
        be32(&w, id.spi)
        w.u16(UInt16(id.destination.family))
        w.u8(id.proto.rawValue)
        w.u8(0)
        return w.bytes
    }

    /// struct xfrm_algo_aead with its key.
    static func aead(_ a: XFRMAEAD) -> [UInt8] {
        var w = ByteWriter()
        let name = Array(a.name.utf8)
        w.append(name)
        zeros(&w, 64 - name.count)
        w.u32(UInt32(a.key.count * 8))
        w.u32(a.icvBits)
        w.append(a.key)
        return w.bytes
    }

    static func mark(_ m: XFRMMark) -> [UInt8] {
        var w = ByteWriter()
        w.u32(m.value)
        w.u32(m.mask)
        return w.bytes
    }

    /// struct xfrm_userpolicy_info (168 B).
    static func policyInfo(_ p: XFRMPolicy) -> [UInt8] {
        var w = ByteWriter()
        selector(&w, p.selector)
        lifetime(&w)
        zeros(&w, 32)  // curlft
        w.u32(p.priority)
        w.u32(0)  // index: the kernel picks it
        w.u8(p.direction.rawValue)
        w.u8(p.action.rawValue)
        w.u8(0)  // flags
        w.u8(0)  // share: XFRM_SHARE_ANY
        zeros(&w, 4)
        return w.bytes
    }

    /// struct xfrm_userpolicy_id (64 B).
    static func policyID(_ id: XFRMPolicyID) -> [UInt8] {
        var w = ByteWriter()
        selector(&w, id.selector)
        w.u32(0)  // index 0: look up by selector
        w.u8(id.direction.rawValue)
        zeros(&w, 3)
        return w.bytes
    }

    /// One struct xfrm_user_tmpl (64 B); any algorithm (the state decides), as iproute2 sends.
    static func template(_ t: XFRMTemplate) -> [UInt8] {
        var w = ByteWriter()
        address(&w, t.destination)
        be32(&w, t.spi)
        w.u8(t.proto.rawValue)
        zeros(&w, 3)
        w.u16(UInt16(t.destination.family))
        zeros(&w, 2)
        address(&w, t.source)
        w.u32(t.reqid)
        w.u8(t.mode.rawValue)
        w.u8(0)  // share
        w.u8(t.optional ? 1 : 0)
        w.u8(0)
        w.u32(.max)  // aalgos
        w.u32(.max)  // ealgos
        w.u32(.max)  // calgos
        return w.bytes
    }

    // MARK: - requests

    static func request(
        _ type: Int, verb: NetlinkVerb, header: [UInt8], label: @autoclosure @escaping @Sendable () -> String,
        _ body: (RequestBuilder) -> Void = { _ in }
    ) throws(KernelError) -> NetlinkRequest {
        let b = RequestBuilder(type: type, verb: verb, operation: label())
        if !header.isEmpty { b.header(bytes: header) }
        body(b)
        return try b.finish()
    }

    static func encode(_ op: XFRMOperation) throws(KernelError) -> NetlinkRequest {
        switch op {
        case .stateAdd(let s): return try state(s, update: false)
        case .stateUpdate(let s): return try state(s, update: true)
        case .stateDelete(let id): return try stateDelete(id)
        case .policyAdd(let p): return try policy(p, update: false)
        case .policyUpdate(let p): return try policy(p, update: true)
        case .policyDelete(let id): return try policyDelete(id)
        }
    }

    /// XFRM_MSG_NEWSA (`ip xfrm state add`) or XFRM_MSG_UPDSA (`ip xfrm state update`). XFRM
    /// ignores NLM_F_CREATE/EXCL: the message type is the verb.
    static func state(_ s: XFRMState, update: Bool) throws(KernelError) -> NetlinkRequest {
        try validate(s)
        let verb = update ? "update" : "add"
        let type = update ? XFRM_MSG_UPDSA : XFRM_MSG_NEWSA
        return try request(type, verb: .change, header: stateInfo(s), label: "ip xfrm state \(verb) \(s)") { b in
            b.put(Int(XFRMA_ALG_AEAD.rawValue), bytes: aead(s.aead))
            if let m = s.mark { b.put(Int(XFRMA_MARK.rawValue), bytes: mark(m)) }
        }
    }

    /// XFRM_MSG_DELSA (`ip xfrm state delete`).
    static func stateDelete(_ id: XFRMStateID) throws(KernelError) -> NetlinkRequest {
        try validate(id)
        return try request(XFRM_MSG_DELSA, verb: .delete, header: stateID(id), label: "ip xfrm state delete \(id)") { b in
            putLookup(b, id)
        }
    }

    /// XFRM_MSG_GETSA for one state (`ip xfrm state get`).
    static func stateGet(_ id: XFRMStateID) throws(KernelError) -> NetlinkRequest {
        try validate(id)
        return try request(XFRM_MSG_GETSA, verb: .get, header: stateID(id), label: "ip xfrm state get \(id)") { b in
            putLookup(b, id)
        }
    }

    static func putLookup(_ b: RequestBuilder, _ id: XFRMStateID) {
        if let src = id.source {
            var w = ByteWriter()
            address(&w, src)
            b.put(Int(XFRMA_SRCADDR.rawValue), bytes: w.bytes)
        }
        if let m = id.mark { b.put(Int(XFRMA_MARK.rawValue), bytes: mark(m)) }
    }

    /// Every state (`ip xfrm state list`): a dump with no filter.
    static func stateDump() throws(KernelError) -> NetlinkRequest {
        try request(XFRM_MSG_GETSA, verb: .dump, header: [], label: "ip xfrm state list")
    }

    /// XFRM_MSG_NEWPOLICY (`ip xfrm policy add`) or XFRM_MSG_UPDPOLICY (`ip xfrm policy update`,
    /// which creates or atomically replaces the policy with the same selector, direction and mark).
    static func policy(_ p: XFRMPolicy, update: Bool) throws(KernelError) -> NetlinkRequest {
        try validate(p)
        let verb = update ? "update" : "add"
        let type = update ? XFRM_MSG_UPDPOLICY : XFRM_MSG_NEWPOLICY
        return try request(type, verb: .change, header: policyInfo(p), label: "ip xfrm policy \(verb) \(p)") { b in
            if !p.templates.isEmpty { b.put(Int(XFRMA_TMPL.rawValue), bytes: p.templates.flatMap(template)) }
            if let m = p.mark { b.put(Int(XFRMA_MARK.rawValue), bytes: mark(m)) }
        }
    }

    /// XFRM_MSG_DELPOLICY (`ip xfrm policy delete`).
    static func policyDelete(_ id: XFRMPolicyID) throws(KernelError) -> NetlinkRequest {
        try validate(id.selector)
        return try request(XFRM_MSG_DELPOLICY, verb: .delete, header: policyID(id), label: "ip xfrm policy delete \(id)") { b in
            if let m = id.mark { b.put(Int(XFRMA_MARK.rawValue), bytes: mark(m)) }
        }
    }

    /// XFRM_MSG_GETPOLICY for one policy (`ip xfrm policy get`).
    static func policyGet(_ id: XFRMPolicyID) throws(KernelError) -> NetlinkRequest {
        try validate(id.selector)
        return try request(XFRM_MSG_GETPOLICY, verb: .get, header: policyID(id), label: "ip xfrm policy get \(id)") { b in
            if let m = id.mark { b.put(Int(XFRMA_MARK.rawValue), bytes: mark(m)) }
        }
    }

    /// Every policy (`ip xfrm policy list`).
    static func policyDump() throws(KernelError) -> NetlinkRequest {
        try request(XFRM_MSG_GETPOLICY, verb: .dump, header: [], label: "ip xfrm policy list")
    }

    // MARK: - validation (before anything is sent)

    static func validate(_ s: XFRMState) throws(KernelError) {
        guard s.source.isIPv4 == s.destination.isIPv4 else {
            throw .invalidArgument("XFRM state \(s): source and destination are different address families")
        }
        guard s.spi >= 256 else { throw .invalidArgument("XFRM state \(s): SPI must be at least 256 (0-255 are reserved)") }
        let name = Array(s.aead.name.utf8)
        guard !name.isEmpty, name.count < 64, !name.contains(0) else {
            throw .invalidArgument("XFRM state \(s): AEAD name must be 1-63 bytes: \(s.aead.name.debugDescription)")
        }
        guard !s.aead.key.isEmpty, s.aead.key.count <= 512 else {
            throw .invalidArgument("XFRM state \(s): AEAD key of \(s.aead.key.count) bytes")
        }
        if s.aead.name == XFRMAEAD.rfc4106Name {
            guard [20, 28, 36].contains(s.aead.key.count) else {
                throw .invalidArgument(
                    "XFRM state \(s): rfc4106 takes a 16, 24 or 32-byte AES key plus a 4-byte salt, got \(s.aead.key.count) bytes")
            }
            guard [64, 96, 128].contains(s.aead.icvBits) else {
                throw .invalidArgument("XFRM state \(s): rfc4106 ICV must be 64, 96 or 128 bits, got \(s.aead.icvBits)")
            }
        }
        if let sel = s.selector { try validate(sel) }
    }

    static func validate(_ id: XFRMStateID) throws(KernelError) {
        if let src = id.source, src.isIPv4 != id.destination.isIPv4 {
            throw .invalidArgument("XFRM state \(id): source and destination are different address families")
        }
    }

    static func validate(_ sel: XFRMSelector) throws(KernelError) {
        guard sel.source.address.isIPv4 == sel.destination.address.isIPv4 else {
            throw .invalidArgument("XFRM selector \(sel): source and destination are different address families")
        }
        if sel.sourcePort != nil || sel.destinationPort != nil {
            guard [.tcp, .udp].contains(sel.upperProtocol) || sel.upperProtocol.rawValue == 132 else {
                throw .invalidArgument("XFRM selector \(sel): ports need proto tcp, udp or sctp")
            }
        }
    }

    static func validate(_ p: XFRMPolicy) throws(KernelError) {
        try validate(p.selector)
        guard p.templates.count <= maxTemplates else {
            throw .invalidArgument("XFRM policy \(p.id): \(p.templates.count) templates, at most \(maxTemplates)")
        }
        for t in p.templates where t.source.isIPv4 != t.destination.isIPv4 {
            throw .invalidArgument("XFRM policy \(p.id): template \(t) mixes address families")
        }
        if p.action == .block && !p.templates.isEmpty {
            throw .invalidArgument("XFRM policy \(p.id): a blocking policy takes no templates")
        }
    }

    // MARK: - decoding

    static func readAddress(_ r: inout ByteReader, family: UInt16) -> IPAddress? {
        let b = r.bytes(addressSize)
        return IPAddress(bytes: family == UInt16(AF_INET) ? Array(b.prefix(4)) : b)
    }
    static func readBE16(_ r: inout ByteReader) -> UInt16 { UInt16(r.u8()) << 8 | UInt16(r.u8()) }
    static func readBE32(_ r: inout ByteReader) -> UInt32 { UInt32(readBE16(&r)) << 16 | UInt32(readBE16(&r)) }
    static func readU64(_ r: inout ByteReader) -> UInt64 { UInt64(r.u32()) | UInt64(r.u32()) << 32 }

    /// A selector from its 56 bytes; nil for the AF_UNSPEC selector and, with `wildcardIsNil`
    /// (states), for the 0/0 → 0/0 any-protocol selector the kernel makes of it when it adds a
    /// state (it copies the state's family into an unset selector).
    static func decodeSelector(_ bytes: [UInt8], wildcardIsNil: Bool = true) -> XFRMSelector? {
        guard bytes.count >= selectorSize else { return nil }
        var r = ByteReader(bytes)
        r.skip(32)
        let dport = readBE16(&r), dmask = readBE16(&r), sport = readBE16(&r), smask = readBE16(&r)
        let family = r.u16()
        let dlen = Int(r.u8()), slen = Int(r.u8()), proto = r.u8()
        guard family == UInt16(AF_INET) || family == UInt16(AF_INET6) else { return nil }
        if wildcardIsNil && dlen == 0 && slen == 0 && proto == 0 && dmask == 0 && smask == 0 { return nil }
        var a = ByteReader(Array(bytes.prefix(32)))
        guard let daddr = readAddress(&a, family: family), let saddr = readAddress(&a, family: family),
            let dst = IPPrefix(address: daddr, length: dlen), let src = IPPrefix(address: saddr, length: slen)
        else { return nil }
        return XFRMSelector(
            source: src, destination: dst, upperProtocol: XFRMUpperProtocol(rawValue: proto),
            sourcePort: smask == 0 ? nil : sport, destinationPort: dmask == 0 ? nil : dport)
    }

    static func decodeMark(_ a: NetlinkAttributes) -> XFRMMark? {
        guard let v = a[Int(XFRMA_MARK.rawValue)], v.count >= 8 else { return nil }
        var r = ByteReader(v)
        let value = r.u32(), mask = r.u32()
        return value == 0 && mask == 0 ? nil : XFRMMark(value, mask: mask)
    }

    static func decodeAEAD(_ v: [UInt8]) -> XFRMAEAD? {
        guard v.count >= aeadHeaderSize else { return nil }
        let name = String(decoding: v.prefix(64).prefix { $0 != 0 }, as: UTF8.self)
        var r = ByteReader(Array(v[64..<aeadHeaderSize]))
        let keyBits = Int(r.u32()), icv = r.u32()
        let keyBytes = (keyBits + 7) / 8
        guard v.count >= aeadHeaderSize + keyBytes else { return nil }
        return XFRMAEAD(name: name, key: Array(v[aeadHeaderSize..<aeadHeaderSize + keyBytes]), icvBits: icv)
    }

    /// An XFRM_MSG_NEWSA (dump or get reply). nil for what meshd does not program: non-ESP
    /// states and states without an AEAD algorithm.
    static func decodeState(_ m: NetlinkMessage) -> XFRMStateEntry? {
        guard Int(m.type) == XFRM_MSG_NEWSA, m.payload.count >= stateInfoSize else { return nil }
        let p = m.payload
        var r = ByteReader(Array(p[selectorSize..<stateInfoSize]))
        let daddrBytes = r.bytes(addressSize)
        let spi = readBE32(&r)
        let protoRaw = r.u8()
        r.skip(3)
        let saddrBytes = r.bytes(addressSize)
        r.skip(64)  // lft
        var c = XFRMStateCounters()
        c.bytes = readU64(&r)
        c.packets = readU64(&r)
        c.addTime = readU64(&r)
        c.useTime = readU64(&r)
        c.replayWindowDrops = r.u32()
        c.replayDrops = r.u32()
        c.integrityFailures = r.u32()
        _ = r.u32()  // seq
        let reqid = r.u32()
        let family = r.u16()
        let modeRaw = r.u8(), window = r.u8()
        let attrs = NetlinkAttributes(p[stateInfoSize...])
        func addr(_ b: [UInt8]) -> IPAddress? { IPAddress(bytes: family == UInt16(AF_INET) ? Array(b.prefix(4)) : b) }
        guard let proto = XFRMProtocol(rawValue: protoRaw), let mode = XFRMMode(rawValue: modeRaw),
            let dst = addr(daddrBytes), let src = addr(saddrBytes),
            let aeadBytes = attrs[Int(XFRMA_ALG_AEAD.rawValue)], let aead = decodeAEAD(aeadBytes)
        else { return nil }
        if let rv = attrs[Int(XFRMA_REPLAY_VAL.rawValue)], rv.count >= 8 {
            var rr = ByteReader(rv)
            c.outboundSequence = rr.u32()
            c.inboundSequence = rr.u32()
        } else if let esn = attrs[Int(XFRMA_REPLAY_ESN_VAL.rawValue)], esn.count >= 12 {
            var rr = ByteReader(esn)
            _ = rr.u32()  // bmp_len
            c.outboundSequence = rr.u32()
            c.inboundSequence = rr.u32()
        }
        let s = XFRMState(
            source: src, destination: dst, spi: spi, reqid: reqid, aead: aead, proto: proto, mode: mode,
            replayWindow: window, mark: decodeMark(attrs), selector: decodeSelector(Array(p[0..<selectorSize])))
        return XFRMStateEntry(state: s, counters: c)
    }

    static func decodeTemplate(_ v: ArraySlice<UInt8>) -> XFRMTemplate? {
        guard v.count >= templateSize else { return nil }
        var r = ByteReader(Array(v.prefix(templateSize)))
        let daddr = r.bytes(addressSize)
        let spi = readBE32(&r)
        let protoRaw = r.u8()
        r.skip(3)
        let family = r.u16()
        r.skip(2)
        let saddr = r.bytes(addressSize)
        let reqid = r.u32()
        let modeRaw = r.u8()
        _ = r.u8()  // share
        let optional = r.u8()
        func addr(_ b: [UInt8]) -> IPAddress? { IPAddress(bytes: family == UInt16(AF_INET) ? Array(b.prefix(4)) : b) }
        guard let proto = XFRMProtocol(rawValue: protoRaw), let mode = XFRMMode(rawValue: modeRaw),
            let dst = addr(daddr), let src = addr(saddr)
        else { return nil }
        return XFRMTemplate(source: src, destination: dst, reqid: reqid, spi: spi, proto: proto, mode: mode, optional: optional != 0)
    }

    /// An XFRM_MSG_NEWPOLICY (dump or get reply). nil for policies meshd cannot express: an
    /// AF_UNSPEC selector, or a template of another protocol or family.
    static func decodePolicy(_ m: NetlinkMessage) -> XFRMPolicyEntry? {
        guard Int(m.type) == XFRM_MSG_NEWPOLICY, m.payload.count >= policyInfoSize else { return nil }
        let p = m.payload
        guard let sel = decodeSelector(Array(p[0..<selectorSize]), wildcardIsNil: false) else { return nil }
        var r = ByteReader(Array(p[selectorSize..<policyInfoSize]))
        r.skip(64)  // lft
        let bytes = readU64(&r), packets = readU64(&r)
        r.skip(16)  // add_time, use_time
        let priority = r.u32(), index = r.u32()
        let dirRaw = r.u8(), actionRaw = r.u8()
        guard let dir = XFRMDirection(rawValue: dirRaw), let action = XFRMPolicyAction(rawValue: actionRaw) else { return nil }
        let attrs = NetlinkAttributes(p[policyInfoSize...])
        var templates: [XFRMTemplate] = []
        if let t = attrs[Int(XFRMA_TMPL.rawValue)] {
            var offset = 0
            while offset + templateSize <= t.count {
                guard let tmpl = decodeTemplate(t[offset..<offset + templateSize]) else { return nil }
                templates.append(tmpl)
                offset += templateSize
            }
        }
        let policy = XFRMPolicy(
            selector: sel, direction: dir, templates: templates, priority: priority, action: action, mark: decodeMark(attrs))
        return XFRMPolicyEntry(policy: policy, index: index, bytes: bytes, packets: packets)
    }
}
