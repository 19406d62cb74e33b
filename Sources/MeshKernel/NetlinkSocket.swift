import CNetlink
import CMeshShim
import Dispatch
#if canImport(Glibc)
    import Glibc
#endif

/// A long-lived netlink socket (connected through libnl) and the serial queue that owns it.
///
/// The socket stays in the network namespace of the thread that created it, whatever thread
/// uses it later; so create it with `NetworkNamespace.run` and keep it. Requests are pipelined:
/// a window of messages goes out in one `sendmsg`, and replies are matched to requests by
/// sequence number, so a batch of 10,000 neighbours costs 10 system calls, not 10,000 round trips.
public final class NetlinkSocket: @unchecked Sendable {
    // Confined to `queue` after init: that is what makes the @unchecked Sendable true.
    private let sock: OpaquePointer
    private let fd: Int32
    private let port: UInt32
    private var nextSeq: UInt32
    private var receiveBuffer: [UInt8]
    private let queue: DispatchQueue

    public let protocolNumber: Int32
    /// Requests in flight per `sendmsg`. The kernel answers a whole window before `sendmsg`
    /// returns, so every ACK of a window must fit in the receive buffer.
    public let window: Int

    public struct Options: Sendable {
        public var sendTimeoutMilliseconds: Int32 = 5_000
        public var receiveTimeoutMilliseconds: Int32 = 10_000
        public var receiveBufferBytes: Int32 = 8 << 20
        public var window = 1024
        /// Strict checking lets dumps be filtered by the kernel (by device, by table).
        public var strictChecking = true
        public init() {}
    }

    /// Opens the socket in the calling thread's network namespace.
    public init(protocol proto: Int32, options: Options = Options()) throws(KernelError) {
        guard let s = nl_socket_alloc() else {
            throw .libnl(operation: "nl_socket_alloc", code: NLE_NOMEM, text: "out of memory")
        }
        let rc = nl_connect(s, proto)
        if rc < 0 {
            nl_socket_free(s)
            throw .libnl(operation: "nl_connect(protocol \(proto))", code: -rc, text: String(cString: nl_geterror(rc)))
        }
        sock = s
        fd = nl_socket_get_fd(s)
        port = nl_socket_get_local_port(s)
        protocolNumber = proto
        window = max(1, options.window)
        nextSeq = UInt32.random(in: 1...0x7fff_ffff)
        receiveBuffer = [UInt8](repeating: 0, count: 256 << 10)
        queue = DispatchQueue(label: "meshd.netlink.\(proto).\(port)")

        var one: Int32 = 1
        var rcvbuf = options.receiveBufferBytes
        var sndbuf: Int32 = 4 << 20
        let size = socklen_t(MemoryLayout<Int32>.size)
        // FORCE variants need CAP_NET_ADMIN; fall back to the capped ones without it.
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, size) < 0 { _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, size) }
        if setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, size) < 0 { _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, size) }
        // Extended ack carries the kernel's reason text; CAP_ACK keeps each ACK small.
        _ = setsockopt(fd, meshd_SOL_NETLINK, NETLINK_EXT_ACK, &one, size)
        _ = setsockopt(fd, meshd_SOL_NETLINK, NETLINK_CAP_ACK, &one, size)
        if options.strictChecking { _ = setsockopt(fd, meshd_SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, size) }
        if meshd_set_socket_timeouts(fd, options.sendTimeoutMilliseconds, options.receiveTimeoutMilliseconds) < 0 {
            let e = Errno.current
            nl_socket_free(s)
            throw .system(call: "setsockopt(SO_SNDTIMEO/SO_RCVTIMEO)", errno: e)
        }
    }

    deinit { nl_socket_free(sock) }

    /// Sends every request and returns one result per request, in order: the reply messages of
    /// a get or dump, or an empty list for an acknowledged change.
    public func transact(_ requests: [NetlinkRequest]) async -> [Result<[NetlinkMessage], KernelError>] {
        await withCheckedContinuation { cont in
            queue.async { cont.resume(returning: self.perform(requests)) }
        }
    }

    /// Blocking form, for code already on a dedicated thread (inside `NetworkNamespace.run`).
    public func transactSync(_ requests: [NetlinkRequest]) -> [Result<[NetlinkMessage], KernelError>] {
        queue.sync { perform(requests) }
    }

    /// One request whose failure is thrown.
    public func request(_ r: NetlinkRequest) async throws(KernelError) -> [NetlinkMessage] {
        try await transact([r])[0].get()
    }

    /// The id of a generic netlink family (`genl_ctrl_resolve`), for a NETLINK_GENERIC socket.
    /// Runs before any pipelined request uses the family, on the owning queue.
    public func resolveGenericFamily(_ name: String) throws(KernelError) -> UInt16 {
        let rc = queue.sync { genl_ctrl_resolve(sock, name) }
        if rc < 0 {
            throw .libnl(operation: "resolve generic netlink family \(name)", code: -rc, text: String(cString: nl_geterror(rc)))
        }
        return UInt16(rc)
    }

    // MARK: - queue-confined

    private func takeSeq() -> UInt32 {
        nextSeq = nextSeq == UInt32.max ? 1 : nextSeq + 1
        return nextSeq
    }

    private func perform(_ requests: [NetlinkRequest]) -> [Result<[NetlinkMessage], KernelError>] {
        var results = [Result<[NetlinkMessage], KernelError>?](repeating: nil, count: requests.count)
        var start = 0
        while start < requests.count {
            // A window is bounded by count (ACKs must fit the receive buffer) and by bytes (sndbuf).
            var end = start, bytes = 0
            while end < requests.count, end - start < window, bytes < (1 << 20) {
                bytes += NetlinkMessage.headerLength + requests[end].body.count + 4
                end += 1
            }
            performWindow(requests, start..<end, into: &results)
            start = end
        }
        return results.map { $0 ?? .failure(.timeout(operation: "netlink")) }
    }

    private func performWindow(
        _ requests: [NetlinkRequest], _ range: Range<Int>,
        into results: inout [Result<[NetlinkMessage], KernelError>?]
    ) {
        var w = ByteWriter()
        w.bytes.reserveCapacity(range.count * 64)
        var pending: [UInt32: Int] = [:]
        pending.reserveCapacity(range.count)
        for i in range {
            let r = requests[i]
            let seq = takeSeq()
            pending[seq] = i
            var flags = UInt16(NLM_F_REQUEST) | r.flags
            if !r.isDump { flags |= UInt16(NLM_F_ACK) }
            w.u32(UInt32(NetlinkMessage.headerLength + r.body.count))
            w.u16(r.type)
            w.u16(flags)
            w.u32(seq)
            w.u32(0)
            w.append(r.body)
            w.pad4()
        }
        let sent = w.bytes.withUnsafeMutableBytes { nl_sendto(sock, $0.baseAddress, $0.count) }
        if sent < 0 {
            let err = KernelError.libnl(operation: "nl_sendto", code: -sent, text: String(cString: nl_geterror(sent)))
            for i in range { results[i] = .failure(err) }
            return
        }

        var collected: [Int: [NetlinkMessage]] = [:]
        var interrupted = Set<Int>()
        func finish(_ i: Int, _ seq: UInt32, _ r: Result<[NetlinkMessage], KernelError>) {
            results[i] = r
            pending[seq] = nil
            collected[i] = nil
        }
        func failAll(_ e: KernelError) {
            for (_, i) in pending { results[i] = .failure(e) }
            pending.removeAll()
        }

        while !pending.isEmpty {
            let n = receiveBuffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                let e = Errno.current
                if e.rawValue == EINTR { continue }
                if e.rawValue == EAGAIN {
                    // Name the first request still waiting: that is the one the kernel did not answer.
                    let first = pending.values.min()!
                    failAll(.timeout(operation: requests[first].operation))
                } else {
                    failAll(.system(call: "recv(netlink)", errno: e))
                }
                break
            }
            let messages: [NetlinkMessage]
            do { messages = try NetlinkMessage.parseAll(receiveBuffer[0..<n]) } catch {
                failAll(.malformedReply(operation: "netlink receive", detail: error.description))
                break
            }
            for m in messages {
                guard m.pid == port || m.pid == 0, let i = pending[m.seq] else { continue }  // stale reply of a timed-out request
                if m.flags & UInt16(NLM_F_DUMP_INTR) != 0 { interrupted.insert(i) }
                switch Int32(m.type) {
                case NLMSG_NOOP:
                    continue
                case NLMSG_ERROR, NLMSG_DONE:
                    let status: NetlinkStatus
                    do { status = try NetlinkStatus.parse(m, isDone: Int32(m.type) == NLMSG_DONE) } catch {
                        finish(i, m.seq, .failure(.malformedReply(operation: requests[i].operation, detail: error.description)))
                        continue
                    }
                    if status.error != 0 {
                        finish(
                            i, m.seq,
                            .failure(
                                .kernel(
                                    operation: requests[i].operation,
                                    errno: Errno(-status.error), message: status.message)))
                    } else if interrupted.contains(i) {
                        finish(i, m.seq, .failure(.dumpInterrupted(operation: requests[i].operation)))
                    } else {
                        finish(i, m.seq, .success(collected[i] ?? []))
                    }
                case NLMSG_OVERRUN:
                    finish(i, m.seq, .failure(.system(call: "netlink", errno: .noBufferSpace)))
                default:
                    collected[i, default: []].append(m)
                }
            }
        }
    }
}
