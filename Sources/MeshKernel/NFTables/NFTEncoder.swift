import CNFTables
#if canImport(Glibc)
    import Glibc
#endif

/// Builds the wire form of an `NFTBatch` with libnftnl: BATCH_BEGIN, one message per object
/// (elements in chunks), BATCH_END. Every message's seq is remembered with the operation it
/// came from, because the kernel reports errors by seq.
final class NFTEncoder {
    /// Elements per NEWSETELEM/DELSETELEM message: keeps each message well under the scratch buffer.
    static let elementsPerMessage = 512
    static let scratchSize = 256 << 10

    struct Message {
        var operation: Int
        /// For element chunks: index of the chunk's first element in the operation.
        var firstElement: Int
        var start: Int
        var length: Int
    }

    private(set) var bytes: [UInt8] = []
    private(set) var messages: [UInt32: Message] = [:]
    private(set) var beginSeq: UInt32 = 0
    private(set) var lastSeq: UInt32 = 0
    private(set) var endSeq: UInt32 = 0
    private var seq: UInt32
    private var nextSetID: UInt32 = 0
    private let scratch: UnsafeMutableRawPointer

    init(firstSeq: UInt32) {
        seq = firstSeq
        scratch = UnsafeMutableRawPointer.allocate(byteCount: Self.scratchSize, alignment: 8)
    }

    deinit { scratch.deallocate() }

    private func nextSeq() -> UInt32 {
        seq = seq == UInt32.max ? 1 : seq + 1
        return seq
    }

    /// Copies the message libnftnl just wrote at `scratch` into the batch.
    private func take(_ nlh: UnsafeMutablePointer<nlmsghdr>, operation: Int, firstElement: Int = 0) {
        let len = Int(nlh.pointee.nlmsg_len)
        precondition(len <= Self.scratchSize, "nftables message overflowed its scratch buffer")
        let start = bytes.count
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: UnsafeRawPointer(nlh), count: len))
        while bytes.count % 4 != 0 { bytes.append(0) }
        messages[nlh.pointee.nlmsg_seq] = Message(operation: operation, firstElement: firstElement, start: start, length: len)
        lastSeq = nlh.pointee.nlmsg_seq
    }

    private func header(_ type: Int, _ family: NFTFamily, _ flags: Int32) -> UnsafeMutablePointer<nlmsghdr> {
        let s = nextSeq()
        return nftnl_nlmsg_build_hdr(
            scratch.assumingMemoryBound(to: CChar.self),
            UInt16(Int(NFNL_SUBSYS_NFTABLES) << 8 | type), UInt16(family.rawValue),
            UInt16(flags), s)
    }

    func encode(_ batch: NFTBatch) throws(KernelError) {
        bytes.reserveCapacity(batch.operations.count * 128)
        beginSeq = nextSeq()
        let begin = nftnl_batch_begin(scratch.assumingMemoryBound(to: CChar.self), beginSeq)!
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: UnsafeRawPointer(begin), count: Int(begin.pointee.nlmsg_len)))
        for (i, op) in batch.operations.enumerated() {
            try encode(op, index: i)
        }
        // Only the last message asks for an ACK: success then produces exactly one reply, and
        // errors (always reported) arrive before it.
        if let last = messages[lastSeq] {
            var flags = UInt16(bytes[last.start + 6]) | UInt16(bytes[last.start + 7]) << 8
            flags |= UInt16(NLM_F_ACK)
            bytes[last.start + 6] = UInt8(flags & 0xff)
            bytes[last.start + 7] = UInt8(flags >> 8)
        }
        endSeq = nextSeq()
        let end = nftnl_batch_end(scratch.assumingMemoryBound(to: CChar.self), endSeq)!
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: UnsafeRawPointer(end), count: Int(end.pointee.nlmsg_len)))
    }

    private func encode(_ op: NFTBatch.Operation, index i: Int) throws(KernelError) {
        // Every name bounded before libnftnl writes it: its builders do not check the buffer.
        for (name, what) in op.names { try checkName(name, what) }
        let create = NLM_F_CREATE
        switch op {
        case .addTable(let t), .deleteTable(let t):
            let obj = nftnl_table_alloc()!
            defer { nftnl_table_free(obj) }
            nftnl_table_set_str(obj, attr(NFTNL_TABLE_NAME), t.name)
            nftnl_table_set_u32(obj, attr(NFTNL_TABLE_FAMILY), UInt32(t.family.rawValue))
            let isAdd = if case .addTable = op { true } else { false }
            let h = header(isAdd ? msg(NFT_MSG_NEWTABLE) : msg(NFT_MSG_DELTABLE), t.family, isAdd ? create : 0)
            nftnl_table_nlmsg_build_payload(h, obj)
            take(h, operation: i)

        case .flushTable(let t):
            let obj = nftnl_rule_alloc()!
            defer { nftnl_rule_free(obj) }
            nftnl_rule_set_str(obj, attr(NFTNL_RULE_TABLE), t.name)
            nftnl_rule_set_u32(obj, attr(NFTNL_RULE_FAMILY), UInt32(t.family.rawValue))
            let h = header(msg(NFT_MSG_DELRULE), t.family, 0)
            nftnl_rule_nlmsg_build_payload(h, obj)
            take(h, operation: i)

        case .addChain(let c), .deleteChain(let c):
            let obj = try chainObject(c)
            defer { nftnl_chain_free(obj) }
            let isAdd = if case .addChain = op { true } else { false }
            let h = header(isAdd ? msg(NFT_MSG_NEWCHAIN) : msg(NFT_MSG_DELCHAIN), c.table.family, isAdd ? create : 0)
            nftnl_chain_nlmsg_build_payload(h, obj)
            take(h, operation: i)

        case .flushChain(let c):
            let obj = nftnl_rule_alloc()!
            defer { nftnl_rule_free(obj) }
            nftnl_rule_set_str(obj, attr(NFTNL_RULE_TABLE), c.table.name)
            nftnl_rule_set_str(obj, attr(NFTNL_RULE_CHAIN), c.name)
            nftnl_rule_set_u32(obj, attr(NFTNL_RULE_FAMILY), UInt32(c.table.family.rawValue))
            let h = header(msg(NFT_MSG_DELRULE), c.table.family, 0)
            nftnl_rule_nlmsg_build_payload(h, obj)
            take(h, operation: i)

        case .addRule(let r, let first):
            let obj = try ruleObject(r)
            defer { nftnl_rule_free(obj) }
            let h = header(msg(NFT_MSG_NEWRULE), r.chain.table.family, create | (first ? 0 : NLM_F_APPEND))
            nftnl_rule_nlmsg_build_payload(h, obj)
            take(h, operation: i)

        case .replaceRule(let r, let handle):
            let obj = try ruleObject(r)
            defer { nftnl_rule_free(obj) }
            nftnl_rule_set_u64(obj, attr(NFTNL_RULE_HANDLE), handle)
            let h = header(msg(NFT_MSG_NEWRULE), r.chain.table.family, NLM_F_REPLACE)
            nftnl_rule_nlmsg_build_payload(h, obj)
            take(h, operation: i)

        case .deleteRule(let c, let handle):
            let obj = nftnl_rule_alloc()!
            defer { nftnl_rule_free(obj) }
            nftnl_rule_set_str(obj, attr(NFTNL_RULE_TABLE), c.table.name)
            nftnl_rule_set_str(obj, attr(NFTNL_RULE_CHAIN), c.name)
            nftnl_rule_set_u32(obj, attr(NFTNL_RULE_FAMILY), UInt32(c.table.family.rawValue))
            nftnl_rule_set_u64(obj, attr(NFTNL_RULE_HANDLE), handle)
            let h = header(msg(NFT_MSG_DELRULE), c.table.family, 0)
            nftnl_rule_nlmsg_build_payload(h, obj)
            take(h, operation: i)

        case .addSet(let s), .deleteSet(let s):
            let obj = try setObject(s)
            defer { nftnl_set_free(obj) }
            // The kernel requires an id on every new set: it names the set within the transaction.
            nextSetID += 1
            nftnl_set_set_u32(obj, attr(NFTNL_SET_ID), nextSetID)
            let isAdd = if case .addSet = op { true } else { false }
            let h = header(isAdd ? msg(NFT_MSG_NEWSET) : msg(NFT_MSG_DELSET), s.table.family, isAdd ? create : 0)
            nftnl_set_nlmsg_build_payload(h, obj)
            take(h, operation: i)

        case .flushSet(let s):
            let obj = try setObject(s)
            defer { nftnl_set_free(obj) }
            let h = header(msg(NFT_MSG_DELSETELEM), s.table.family, 0)
            nftnl_set_elems_nlmsg_build_payload(h, obj)
            take(h, operation: i)

        case .addElements(let s, let elements), .deleteElements(let s, let elements):
            let isAdd = if case .addElements = op { true } else { false }
            if elements.isEmpty { return }  // nothing to send; an empty NEWSETELEM would be an error
            try validate(elements, for: s, adding: isAdd)
            var start = 0
            while start < elements.count {
                let end = min(elements.count, start + Self.elementsPerMessage)
                let obj = nftnl_set_alloc()!
                defer { nftnl_set_free(obj) }
                nftnl_set_set_str(obj, attr(NFTNL_SET_TABLE), s.table.name)
                nftnl_set_set_str(obj, attr(NFTNL_SET_NAME), s.name)
                nftnl_set_set_u32(obj, attr(NFTNL_SET_FAMILY), UInt32(s.table.family.rawValue))
                for e in elements[start..<end] {
                    let el = nftnl_set_elem_alloc()!
                    let rc = e.key.bytes.withUnsafeBytes {
                        nftnl_set_elem_set(el, attr(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count))
                    }
                    if rc < 0 {
                        nftnl_set_elem_free(el)
                        throw .invalidArgument("\(s.kindWord) \(s.name): libnftnl refused element key \(e.key)")
                    }
                    if isAdd {
                        switch e.data {
                        case .none: break
                        case .value(let v):
                            let rc = v.bytes.withUnsafeBytes {
                                nftnl_set_elem_set(el, attr(NFTNL_SET_ELEM_DATA), $0.baseAddress, UInt32($0.count))
                            }
                            if rc < 0 {
                                nftnl_set_elem_free(el)
                                throw .invalidArgument("map \(s.name): libnftnl refused element value \(v)")
                            }
                        case .verdict(let v):
                            nftnl_set_elem_set_u32(el, attr(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: v.code))
                            if let c = v.chain { nftnl_set_elem_set_str(el, attr(NFTNL_SET_ELEM_CHAIN), c) }
                        }
                    }
                    nftnl_set_elem_add(obj, el)
                }
                let h = header(isAdd ? msg(NFT_MSG_NEWSETELEM) : msg(NFT_MSG_DELSETELEM), s.table.family, isAdd ? create : 0)
                nftnl_set_elems_nlmsg_build_payload(h, obj)
                take(h, operation: i, firstElement: start)
                start = end
            }
        }
    }

    // MARK: - objects

    private func chainObject(_ c: NFTChain) throws(KernelError) -> OpaquePointer {
        try checkName(c.name, "chain")
        let obj = nftnl_chain_alloc()!
        nftnl_chain_set_str(obj, attr(NFTNL_CHAIN_TABLE), c.table.name)
        nftnl_chain_set_str(obj, attr(NFTNL_CHAIN_NAME), c.name)
        nftnl_chain_set_u32(obj, attr(NFTNL_CHAIN_FAMILY), UInt32(c.table.family.rawValue))
        if let b = c.base {
            nftnl_chain_set_u32(obj, attr(NFTNL_CHAIN_HOOKNUM), b.hook.rawValue)
            nftnl_chain_set_s32(obj, attr(NFTNL_CHAIN_PRIO), b.priority)
            nftnl_chain_set_str(obj, attr(NFTNL_CHAIN_TYPE), b.type.rawValue)
            nftnl_chain_set_u32(obj, attr(NFTNL_CHAIN_POLICY), b.policy.rawValue)
        }
        return obj
    }

    private func setObject(_ s: NFTSet) throws(KernelError) -> OpaquePointer {
        try checkName(s.name, "set")
        guard !s.key.fields.isEmpty else { throw .invalidArgument("set \(s.name): a key needs at least one field") }
        let obj = nftnl_set_alloc()!
        nftnl_set_set_str(obj, attr(NFTNL_SET_TABLE), s.table.name)
        nftnl_set_set_str(obj, attr(NFTNL_SET_NAME), s.name)
        nftnl_set_set_u32(obj, attr(NFTNL_SET_FAMILY), UInt32(s.table.family.rawValue))
        nftnl_set_set_u32(obj, attr(NFTNL_SET_KEY_TYPE), s.key.typeID)
        nftnl_set_set_u32(obj, attr(NFTNL_SET_KEY_LEN), UInt32(s.key.length))
        var flags: UInt32 = 0
        var dataHostOrder = false
        switch s.kind {
        case .set: break
        case .map(let value):
            flags |= NFT_SET_MAP.rawValue
            nftnl_set_set_u32(obj, attr(NFTNL_SET_DATA_TYPE), value.typeID)
            nftnl_set_set_u32(obj, attr(NFTNL_SET_DATA_LEN), UInt32(value.length))
            dataHostOrder = value.hostOrder
        case .verdictMap:
            flags |= NFT_SET_MAP.rawValue
            nftnl_set_set_u32(obj, attr(NFTNL_SET_DATA_TYPE), NFT_DATA_VERDICT.rawValue)
            nftnl_set_set_u32(obj, attr(NFTNL_SET_DATA_LEN), 0)
        }
        nftnl_set_set_u32(obj, attr(NFTNL_SET_FLAGS), flags)
        // One counter expression on the set: the kernel clones it into every element it adds.
        if s.counters, let counter = nftnl_expr_alloc("counter") { nftnl_set_add_expr(obj, counter) }
        // nft reads byte order from the set's user data; without it, integer keys print byte-swapped.
        if s.key.hostOrder || dataHostOrder {
            let ud = nftnl_udata_buf_alloc(64)!
            defer { nftnl_udata_buf_free(ud) }
            _ = nftnl_udata_put_u32(ud, UInt8(NFTNL_UDATA_SET_KEYBYTEORDER.rawValue), s.key.hostOrder ? 1 : 2)
            _ = nftnl_udata_put_u32(ud, UInt8(NFTNL_UDATA_SET_DATABYTEORDER.rawValue), dataHostOrder ? 1 : 2)
            nftnl_set_set_data(obj, attr(NFTNL_SET_USERDATA), nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud))
        }
        return obj
    }

    private func validate(_ elements: [NFTElement], for s: NFTSet, adding: Bool) throws(KernelError) {
        let keyLen = s.key.length
        // The kernel's NFT_DATA_VALUE_MAXLEN; it also bounds a chunk well inside the scratch buffer.
        guard keyLen <= 64 else { throw .invalidArgument("\(s.kindWord) \(s.name): key of \(keyLen) bytes exceeds 64") }
        if case .map(let v) = s.kind, v.length > 64 {
            throw .invalidArgument("map \(s.name): value of \(v.length) bytes exceeds 64")
        }
        for (n, e) in elements.enumerated() {
            guard e.key.bytes.count == keyLen else {
                throw .invalidArgument(
                    "\(s.kindWord) \(s.name) element #\(n): key is \(e.key.bytes.count) bytes, the key type needs \(keyLen)")
            }
            guard adding else { continue }  // deletes name the key only
            switch (s.kind, e.data) {
            case (.set, .none): break
            case (.map(let v), .value(let d)) where d.bytes.count == v.length: break
            case (.map(let v), .value(let d)):
                throw .invalidArgument("map \(s.name) element #\(n): value is \(d.bytes.count) bytes, the map needs \(v.length)")
            case (.verdictMap, .verdict(let v)):
                if let c = v.chain { try checkName(c, "element #\(n) verdict chain") }
            default:
                throw .invalidArgument("\(s.kindWord) \(s.name) element #\(n): \(e.data) does not fit a \(s.kind)")
            }
        }
    }

    private func ruleObject(_ r: NFTRule) throws(KernelError) -> OpaquePointer {
        // NFT_RULE_MAXEXPRS and NFT_DATA_VALUE_MAXLEN: the kernel refuses more, and together they
        // bound a rule message well inside the scratch buffer.
        guard r.expressions.count <= 128 else {
            throw .invalidArgument("rule in \(r.chain.name): \(r.expressions.count) expressions, the kernel allows 128")
        }
        for e in r.expressions where e.largestValue > 64 {
            throw .invalidArgument("rule in \(r.chain.name): a \(e.kernelName) value of \(e.largestValue) bytes exceeds 64")
        }
        let obj = nftnl_rule_alloc()!
        nftnl_rule_set_str(obj, attr(NFTNL_RULE_TABLE), r.chain.table.name)
        nftnl_rule_set_str(obj, attr(NFTNL_RULE_CHAIN), r.chain.name)
        nftnl_rule_set_u32(obj, attr(NFTNL_RULE_FAMILY), UInt32(r.chain.table.family.rawValue))
        for e in r.expressions {
            guard let x = Self.expression(e) else {
                nftnl_rule_free(obj)
                throw .invalidArgument("rule in \(r.chain.name): libnftnl has no expression \(e.kernelName)")
            }
            nftnl_rule_add_expr(obj, x)
        }
        if let comment = r.comment {
            guard comment.utf8.count < 128, !comment.utf8.contains(0) else {
                nftnl_rule_free(obj)
                throw .invalidArgument("rule comment must be under 128 bytes without NUL: \(comment.prefix(40))")
            }
            let ud = nftnl_udata_buf_alloc(256)!
            defer { nftnl_udata_buf_free(ud) }
            _ = nftnl_udata_put_strz(ud, UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue), comment)
            nftnl_rule_set_data(obj, attr(NFTNL_RULE_USERDATA), nftnl_udata_buf_data(ud), nftnl_udata_buf_len(ud))
        }
        return obj
    }

    static func expression(_ e: NFTExpr) -> OpaquePointer? {
        guard let x = nftnl_expr_alloc(e.kernelName) else { return nil }
        func u32(_ a: Int, _ v: UInt32) { nftnl_expr_set_u32(x, UInt16(a), v) }
        func data(_ a: Int, _ v: NFTValue) {
            v.bytes.withUnsafeBytes { _ = nftnl_expr_set(x, UInt16(a), $0.baseAddress, UInt32($0.count)) }
        }
        switch e {
        case .payload(let base, let offset, let length, let r):
            u32(NFTNL_EXPR_PAYLOAD_DREG, r.raw)
            u32(NFTNL_EXPR_PAYLOAD_BASE, base.rawValue)
            u32(NFTNL_EXPR_PAYLOAD_OFFSET, offset)
            u32(NFTNL_EXPR_PAYLOAD_LEN, length)
        case .meta(let key, let r):
            u32(NFTNL_EXPR_META_KEY, key.rawValue)
            u32(NFTNL_EXPR_META_DREG, r.raw)
        case .metaSet(let key, let r):
            u32(NFTNL_EXPR_META_KEY, key.rawValue)
            u32(NFTNL_EXPR_META_SREG, r.raw)
        case .ct(let key, let r):
            u32(NFTNL_EXPR_CT_KEY, key.rawValue)
            u32(NFTNL_EXPR_CT_DREG, r.raw)
        case .ctSet(let key, let r):
            u32(NFTNL_EXPR_CT_KEY, key.rawValue)
            u32(NFTNL_EXPR_CT_SREG, r.raw)
        case .cmp(let op, let r, let v):
            u32(NFTNL_EXPR_CMP_SREG, r.raw)
            u32(NFTNL_EXPR_CMP_OP, op.rawValue)
            data(NFTNL_EXPR_CMP_DATA, v)
        case .bitwise(let from, let into, let mask, let xor):
            u32(NFTNL_EXPR_BITWISE_SREG, from.raw)
            u32(NFTNL_EXPR_BITWISE_DREG, into.raw)
            u32(NFTNL_EXPR_BITWISE_LEN, UInt32(mask.bytes.count))
            data(NFTNL_EXPR_BITWISE_MASK, mask)
            data(NFTNL_EXPR_BITWISE_XOR, xor)
        case .immediate(let r, let v):
            u32(NFTNL_EXPR_IMM_DREG, r.raw)
            data(NFTNL_EXPR_IMM_DATA, v)
        case .verdict(let v):
            u32(NFTNL_EXPR_IMM_DREG, NFTRegister.verdict.raw)
            u32(NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: v.code))
            if let c = v.chain { nftnl_expr_set_str(x, UInt16(NFTNL_EXPR_IMM_CHAIN), c) }
        case .counter:
            break
        case .lookup(let set, let from, let into, let invert):
            nftnl_expr_set_str(x, UInt16(NFTNL_EXPR_LOOKUP_SET), set)
            u32(NFTNL_EXPR_LOOKUP_SREG, from.raw)
            if let into { u32(NFTNL_EXPR_LOOKUP_DREG, into.raw) }
            if invert { u32(NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV.rawValue) }
        case .numgen(let random, let modulus, let offset, let r):
            u32(NFTNL_EXPR_NG_DREG, r.raw)
            u32(NFTNL_EXPR_NG_MODULUS, modulus)
            u32(NFTNL_EXPR_NG_TYPE, random ? NFT_NG_RANDOM.rawValue : NFT_NG_INCREMENTAL.rawValue)
            u32(NFTNL_EXPR_NG_OFFSET, offset)
        case .jhash(let from, let length, let modulus, let seed, let offset, let r):
            u32(NFTNL_EXPR_HASH_SREG, from.raw)
            u32(NFTNL_EXPR_HASH_DREG, r.raw)
            u32(NFTNL_EXPR_HASH_LEN, length)
            u32(NFTNL_EXPR_HASH_MODULUS, modulus)
            u32(NFTNL_EXPR_HASH_SEED, seed)
            u32(NFTNL_EXPR_HASH_OFFSET, offset)
            u32(NFTNL_EXPR_HASH_TYPE, NFT_HASH_JENKINS.rawValue)
        case .nat(let kind, let family, let address, let port, let flags):
            u32(NFTNL_EXPR_NAT_TYPE, kind.rawValue)
            u32(NFTNL_EXPR_NAT_FAMILY, UInt32(family == .ip6 ? 10 : 2))
            if let address { u32(NFTNL_EXPR_NAT_REG_ADDR_MIN, address.raw) }
            if let port { u32(NFTNL_EXPR_NAT_REG_PROTO_MIN, port.raw) }
            if !flags.isEmpty { u32(NFTNL_EXPR_NAT_FLAGS, flags.rawValue) }
        case .masquerade(let port, let flags):
            if let port { u32(NFTNL_EXPR_MASQ_REG_PROTO_MIN, port.raw) }
            if !flags.isEmpty { u32(NFTNL_EXPR_MASQ_FLAGS, flags.rawValue) }
        case .fib(let result, let flags, let r):
            u32(NFTNL_EXPR_FIB_DREG, r.raw)
            u32(NFTNL_EXPR_FIB_RESULT, result)
            u32(NFTNL_EXPR_FIB_FLAGS, flags)
        case .rt(let key, let r):
            u32(NFTNL_EXPR_RT_KEY, key.rawValue)
            u32(NFTNL_EXPR_RT_DREG, r.raw)
        }
        return x
    }

    private func checkName(_ name: String, _ what: String) throws(KernelError) {
        guard !name.isEmpty, name.utf8.count < 256, !name.utf8.contains(0) else {
            throw .invalidArgument("\(what) name must be 1-255 bytes without NUL: \(name.debugDescription)")
        }
    }
}

// libnftnl's attribute enums import as named C enums (with rawValue) or anonymous ones (Int);
// these overloads give both the UInt16 its setters take.
@inline(__always) func attr<T: RawRepresentable>(_ a: T) -> UInt16 where T.RawValue: BinaryInteger { UInt16(a.rawValue) }
@inline(__always) func attr(_ a: Int) -> UInt16 { UInt16(a) }
@inline(__always) func msg<T: RawRepresentable>(_ a: T) -> Int where T.RawValue: BinaryInteger { Int(a.rawValue) }
@inline(__always) func msg(_ a: Int) -> Int { a }
