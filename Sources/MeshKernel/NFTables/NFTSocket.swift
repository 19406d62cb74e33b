import CNFTables
import CMeshShim
import Dispatch
#if canImport(Glibc)
    import Glibc
#endif

/// A long-lived NETLINK_NETFILTER socket (libmnl) owned by a serial queue. Like every MeshKernel
/// socket it stays in the namespace of the thread that opened it: open it inside
/// `NetworkNamespace.run`.
///
/// `commit` sends a whole `NFTBatch` in one `sendmsg`, which the kernel applies as one
/// transaction; a refusal comes back as `KernelError.transaction` naming every operation the
/// kernel objected to (and, for element chunks, which element), with nothing applied.
public final class NFTSocket: @unchecked Sendable {
    // Confined to `queue` after init.
    private let sock: OpaquePointer
    private let fd: Int32
    private let port: UInt32
    private var seq: UInt32
    private var receiveBuffer: [UInt8]
    private var sendBufferBytes: Int32 = 0
    private let queue: DispatchQueue

    public init(receiveTimeoutMilliseconds: Int32 = 30_000) throws(KernelError) {
        guard let s = mnl_socket_open(NETLINK_NETFILTER) else {
            throw .system(call: "mnl_socket_open(NETLINK_NETFILTER)", errno: .current)
        }
        if mnl_socket_bind(s, 0, pid_t(MNL_SOCKET_AUTOPID)) < 0 {
            let e = Errno.current
            mnl_socket_close(s)
            throw .system(call: "mnl_socket_bind", errno: e)
        }
        sock = s
        fd = mnl_socket_get_fd(s)
        port = mnl_socket_get_portid(s)
        seq = UInt32.random(in: 1...0x3fff_ffff)
        receiveBuffer = [UInt8](repeating: 0, count: 1 << 20)
        queue = DispatchQueue(label: "meshd.nftables.\(port)")
        var one: Int32 = 1
        var rcvbuf: Int32 = 16 << 20
        let size = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, size) < 0 { _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, size) }
        _ = setsockopt(fd, meshd_SOL_NETLINK, NETLINK_EXT_ACK, &one, size)
        // Without CAP_ACK every error would echo its whole request, up to 64 KB for an element chunk.
        _ = setsockopt(fd, meshd_SOL_NETLINK, NETLINK_CAP_ACK, &one, size)
        if meshd_set_socket_timeouts(fd, 10_000, receiveTimeoutMilliseconds) < 0 {
            let e = Errno.current
            mnl_socket_close(s)
            throw .system(call: "setsockopt(SO_SNDTIMEO/SO_RCVTIMEO)", errno: e)
        }
    }

    deinit { mnl_socket_close(sock) }

    private func catching<T>(_ body: () throws(KernelError) -> T) -> Result<T, KernelError> {
        do { return .success(try body()) } catch { return .failure(error) }
    }

    // MARK: - transactions

    public func commit(_ batch: NFTBatch) async throws(KernelError) {
        let r: Result<Void, KernelError> = await withCheckedContinuation { cont in
            queue.async { cont.resume(returning: self.catching { () throws(KernelError) in try self.performCommit(batch) }) }
        }
        try r.get()
    }

    private func performCommit(_ batch: NFTBatch) throws(KernelError) {
        guard !batch.isEmpty else { return }
        let enc = NFTEncoder(firstSeq: seq)
        try enc.encode(batch)
        seq = enc.endSeq
        // Only empty element lists: nothing for the kernel to do, and no message would be acked.
        guard !enc.messages.isEmpty else { return }
        try ensureSendBuffer(enc.bytes.count)

        let sent = enc.bytes.withUnsafeBytes { mnl_socket_sendto(sock, $0.baseAddress, $0.count) }
        if sent < 0 { throw .system(call: "sendmsg(nftables batch of \(enc.bytes.count) bytes)", errno: .current) }

        var failures: [KernelError.BatchFailure] = []
        var done = false
        while !done {
            let messages: [NetlinkMessage]
            do { messages = try receive(operation: "nftables batch") } catch {
                // Keep what the kernel already refused: that is the useful part of the report.
                if !failures.isEmpty { throw .transaction(failures: failures, operations: batch.operations.count) }
                if case .timeout = error {
                    throw .timeout(
                        operation: "nftables batch of \(batch.operations.count) changes (outcome unknown: read the ruleset back)")
                }
                throw error
            }
            for m in messages where m.pid == port || m.pid == 0 {
                guard Int32(m.type) == NLMSG_ERROR else { continue }
                let status: NetlinkStatus
                do { status = try NetlinkStatus.parse(m, isDone: false) } catch {
                    throw .malformedReply(operation: "nftables batch", detail: error.description)
                }
                if m.seq == enc.lastSeq { done = true }
                if m.seq == enc.beginSeq {
                    // The kernel blames the batch itself (e.g. a missing BATCH_END or a busy ruleset).
                    failures.append(
                        .init(
                            index: -1,
                            error: .kernel(
                                operation: "nftables batch", errno: Errno(-status.error),
                                message: status.message)))
                    done = true
                    continue
                }
                guard status.error != 0, let info = enc.messages[m.seq] else { continue }
                let op = batch.operations[info.operation]
                failures.append(
                    .init(
                        index: info.operation,
                        error: .kernel(
                            operation: describe(op, info, offset: status.offset, bytes: enc.bytes),
                            errno: Errno(-status.error), message: status.message)))
            }
        }
        if !failures.isEmpty { throw .transaction(failures: failures, operations: batch.operations.count) }
    }

    /// A large batch goes out in one sendmsg, so the send buffer must hold it all.
    private func ensureSendBuffer(_ bytes: Int) throws(KernelError) {
        let want = Int32(clamping: bytes + (64 << 10))
        guard want > sendBufferBytes else { return }
        var v = want
        let size = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, size) < 0,
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, size) < 0
        {
            throw .system(call: "setsockopt(SO_SNDBUF \(want))", errno: .current)
        }
        sendBufferBytes = want
    }

    /// Names the failed operation, and for an element chunk the element the kernel pointed at.
    private func describe(_ op: NFTBatch.Operation, _ info: NFTEncoder.Message, offset: UInt32?, bytes: [UInt8]) -> String {
        switch op {
        case .addElements(let s, let elements), .deleteElements(let s, let elements):
            let verb = if case .addElements = op { "add" } else { "delete" }
            let message = Array(bytes[info.start..<(info.start + info.length)])
            let local = offset.flatMap { Self.elementIndex(in: message, offset: Int($0)) }
            if let local, info.firstElement + local < elements.count {
                let n = info.firstElement + local
                return "\(verb) element \(s.table.family) \(s.table.name) \(s.name) #\(n) key \(elements[n].key)"
            }
            let last = min(elements.count, info.firstElement + NFTEncoder.elementsPerMessage) - 1
            return "\(verb) element \(s.table.family) \(s.table.name) \(s.name) #\(info.firstElement)...#\(last)"
        default:
            return op.label
        }
    }

    /// Which element of a NEWSETELEM/DELSETELEM message contains byte `offset` (from the
    /// start of the netlink message, as the kernel's extack reports it).
    static func elementIndex(in message: [UInt8], offset: Int) -> Int? {
        var pos = NetlinkMessage.headerLength + 4
        while pos + 4 <= message.count {
            let len = Int(message[pos]) | Int(message[pos + 1]) << 8
            let type = (Int(message[pos + 2]) | Int(message[pos + 3]) << 8) & 0x3fff
            guard len >= 4, pos + len <= message.count else { return nil }
            if type == 3 {  // NFTA_SET_ELEM_LIST_ELEMENTS
                var p = pos + 4, index = 0
                while p + 4 <= pos + len {
                    let l = Int(message[p]) | Int(message[p + 1]) << 8
                    guard l >= 4 else { return nil }
                    if offset >= p && offset < p + l { return index }
                    p += align4(l)
                    index += 1
                }
                return nil
            }
            pos += align4(len)
        }
        return nil
    }

    private func receive(operation: String) throws(KernelError) -> [NetlinkMessage] {
        while true {
            let n = receiveBuffer.withUnsafeMutableBytes { mnl_socket_recvfrom(sock, $0.baseAddress, $0.count) }
            if n < 0 {
                let e = Errno.current
                if e.rawValue == EINTR { continue }
                if e.rawValue == EAGAIN { throw .timeout(operation: operation) }
                throw .system(call: "recvmsg(\(operation))", errno: e)
            }
            do { return try NetlinkMessage.parseAll(receiveBuffer[0..<n]) } catch {
                throw .malformedReply(operation: operation, detail: error.description)
            }
        }
    }

    // MARK: - dumps

    /// Dumps one object type; `attributes` filter it (the kernel honours table and chain filters).
    private func dump(_ type: Int, family: NFTFamily?, attributes: [(UInt16, String)], operation: String)
        throws(KernelError) -> [NetlinkMessage]
    {
        seq &+= 1
        let mySeq = seq
        var w = ByteWriter()
        w.u32(0)
        w.u16(UInt16(Int(NFNL_SUBSYS_NFTABLES) << 8 | type))
        w.u16(UInt16(NLM_F_REQUEST | NLM_F_DUMP | NLM_F_ACK))
        w.u32(mySeq)
        w.u32(0)
        w.u8(family?.rawValue ?? 0)
        w.u8(UInt8(NFNETLINK_V0))
        w.u16(0)
        for (t, s) in attributes {
            let v = Array(s.utf8) + [0]
            w.u16(UInt16(4 + v.count))
            w.u16(t)
            w.append(v)
            w.pad4()
        }
        let total = UInt32(w.bytes.count)
        w.bytes[0] = UInt8(total & 0xff)
        w.bytes[1] = UInt8((total >> 8) & 0xff)
        w.bytes[2] = UInt8((total >> 16) & 0xff)
        w.bytes[3] = UInt8(total >> 24)
        let sent = w.bytes.withUnsafeBytes { mnl_socket_sendto(sock, $0.baseAddress, $0.count) }
        if sent < 0 { throw .system(call: "sendmsg(\(operation))", errno: .current) }

        var out: [NetlinkMessage] = []
        var interrupted = false
        while true {
            for m in try receive(operation: operation) where m.seq == mySeq {
                if m.flags & UInt16(NLM_F_DUMP_INTR) != 0 { interrupted = true }
                switch Int32(m.type) {
                case NLMSG_DONE, NLMSG_ERROR:
                    let status: NetlinkStatus
                    do { status = try NetlinkStatus.parse(m, isDone: Int32(m.type) == NLMSG_DONE) } catch {
                        throw .malformedReply(operation: operation, detail: error.description)
                    }
                    if status.error != 0 {
                        throw .kernel(operation: operation, errno: Errno(-status.error), message: status.message)
                    }
                    if interrupted { throw .dumpInterrupted(operation: operation) }
                    return out
                case NLMSG_NOOP:
                    continue
                default:
                    out.append(m)
                }
            }
        }
    }

    private func dumpRetrying(_ type: Int, family: NFTFamily?, attributes: [(UInt16, String)], operation: String)
        throws(KernelError) -> [NetlinkMessage]
    {
        var attempt = 0
        while true {
            let r = queue.sync {
                catching { () throws(KernelError) in
                    try dump(type, family: family, attributes: attributes, operation: operation)
                }
            }
            switch r {
            case .success(let m): return m
            case .failure(.dumpInterrupted(let op)):
                attempt += 1
                if attempt >= 5 { throw .dumpInterrupted(operation: op) }
            case .failure(let e): throw e
            }
        }
    }

    public func listTables(family: NFTFamily? = nil) throws(KernelError) -> [NFTTableInfo] {
        try dumpRetrying(msg(NFT_MSG_GETTABLE), family: family, attributes: [], operation: "nft list tables")
            .compactMap(NFTDecode.table)
    }

    public func listChains(_ table: NFTTable) throws(KernelError) -> [NFTChainInfo] {
        try dumpRetrying(
            msg(NFT_MSG_GETCHAIN), family: table.family, attributes: [(1, table.name)],
            operation: "nft list chains \(table.family) \(table.name)"
        )
        .compactMap(NFTDecode.chain).filter { $0.table == table.name }
    }

    public func listRules(_ table: NFTTable, chain: String? = nil) throws(KernelError) -> [NFTRuleInfo] {
        var attrs: [(UInt16, String)] = [(1, table.name)]
        if let chain { attrs.append((2, chain)) }
        return try dumpRetrying(
            msg(NFT_MSG_GETRULE), family: table.family, attributes: attrs,
            operation: "nft list \(chain.map { "chain \(table.family) \(table.name) \($0)" } ?? "table \(table.family) \(table.name)")"
        )
        .compactMap(NFTDecode.rule).filter { $0.table == table.name && (chain == nil || $0.chain == chain) }
    }

    public func listSets(_ table: NFTTable) throws(KernelError) -> [NFTSetInfo] {
        try dumpRetrying(
            msg(NFT_MSG_GETSET), family: table.family, attributes: [(1, table.name)],
            operation: "nft list sets \(table.family) \(table.name)"
        )
        .compactMap(NFTDecode.set).filter { $0.table == table.name }
    }

    public func listElements(_ set: NFTSet) throws(KernelError) -> [NFTElement] {
        try dumpRetrying(
            msg(NFT_MSG_GETSETELEM), family: set.table.family, attributes: [(1, set.table.name), (2, set.name)],
            operation: "nft list \(set.kindWord) \(set.table.family) \(set.table.name) \(set.name)"
        )
        .flatMap(NFTDecode.elements)
    }
}

extension NetworkNamespace {
    /// An nftables socket living in this namespace. A reply not read within the timeout fails
    /// the call with `KernelError.timeout`.
    public func openNFTables(receiveTimeoutMilliseconds: Int32 = 30_000) throws(KernelError) -> NFTSocket {
        try run { () throws(KernelError) in try NFTSocket(receiveTimeoutMilliseconds: receiveTimeoutMilliseconds) }
    }
}
