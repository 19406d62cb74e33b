import CNetlink
#if canImport(Glibc)
    import Glibc
#endif

/// IPsec states (SAs) and policies of one network namespace over NETLINK_XFRM, with `ip xfrm`'s
/// verbs. Holds one long-lived socket opened inside that namespace (XFRM state is per namespace,
/// so each node of a test machine has its own); requests are pipelined and matched by sequence
/// number as on `NetlinkHandle`, and failures carry the kernel's errno and extended-ack text.
///
/// How the dataplane is expected to use it for an encrypted overlay between this node (L) and a
/// peer (P), both underlay addresses, with keys handed out by the manager:
///
/// 1. **Install**, in one `apply` and in this order: `stateAdd` of the inbound SA (P → L, SPI
///    chosen for L) and of the outbound SA (L → P); then `policyUpdate` of the `in` policy
///    (`XFRMSelector.vxlan(from: P, to: L)`, template reqid with SPI 0 = any) and the `out` policy
///    (`XFRMSelector.vxlan(from: L, to: P)`, template with the outbound SPI). Add a `fwd` policy
///    like `in` only when overlay traffic is routed through this namespace rather than delivered
///    to it. Policies are idempotent with `policyUpdate`; states are not (`stateAdd` of an
///    existing SPI is EEXIST, which a reconciler can treat as "already there" after comparing
///    `stateGet`).
/// 2. **Rotate** (make-before-break): both nodes first add the new inbound SA (new SPI, same
///    reqid) next to the old one — the `in` template's SPI 0 accepts both. Once the peer has
///    confirmed, `policyUpdate` the `out` policy with a template naming the new outbound SPI
///    (an atomic replace: no packet sees no policy), add the new outbound SA before that, and
///    delete the old states after a grace period longer than a packet's flight time.
/// 3. **Remove**: delete the `out` policy's states before the policy, never the other way
///    round. A policy without a state drops (fail closed); a state without a policy is unused;
///    but a moment with neither an `out` policy nor the nftables drop rule sends cleartext.
///
/// Deleting a state that is gone answers ESRCH (`KernelError.errno?.rawValue == ESRCH`), as
/// does deleting a missing policy (ENOENT). meshd never flushes: it deletes what it installed.
/// Keys live in `XFRMAEAD.key` and reach the kernel in the request only; no description or
/// error prints them, but Swift arrays cannot be wiped, so keep key values short-lived.
public final class XFRMHandle: Sendable {
    public let socket: NetlinkSocket
    /// The namespace the socket lives in; nil for the namespace of the creating thread.
    public let namespace: NetworkNamespace?

    /// Opens the handle inside `namespace` (or the caller's own namespace when nil). Fails with
    /// a `.libnl` error when the kernel has no NETLINK_XFRM (no `xfrm_user`).
    public init(namespace: NetworkNamespace? = nil) throws(KernelError) {
        self.namespace = namespace
        var options = NetlinkSocket.Options()
        options.strictChecking = false  // XFRM dumps take no filter header
        if let namespace {
            socket = try namespace.openNetlink(protocol: NETLINK_XFRM, options: options)
        } else {
            socket = try NetlinkSocket(protocol: NETLINK_XFRM, options: options)
        }
    }

    // MARK: states

    /// `ip xfrm state add`: EEXIST if a state with the same destination, SPI and protocol exists.
    public func stateAdd(_ s: XFRMState) async throws(KernelError) { try await apply([.stateAdd(s)]) }
    /// `ip xfrm state update`: changes an existing state (ESRCH if there is none). The kernel
    /// keeps the algorithm and key of an existing SA: a new key needs a new SPI.
    public func stateUpdate(_ s: XFRMState) async throws(KernelError) { try await apply([.stateUpdate(s)]) }
    /// `ip xfrm state delete`: ESRCH if there is no such state.
    public func stateDelete(_ id: XFRMStateID) async throws(KernelError) { try await apply([.stateDelete(id)]) }

    /// `ip xfrm state get`; nil when there is no such state.
    public func stateGet(_ id: XFRMStateID) async throws(KernelError) -> XFRMStateEntry? {
        do {
            return try await socket.request(try XFRMMessages.stateGet(id)).lazy.compactMap(XFRMMessages.decodeState).first
        } catch let e where e.errno?.rawValue == ESRCH || e.errno == .noEntry {
            return nil
        }
    }

    /// Every ESP state with an AEAD algorithm in the namespace (`ip xfrm state list`), keys included.
    public func stateList() async throws(KernelError) -> [XFRMStateEntry] {
        try await socket.request(try XFRMMessages.stateDump()).compactMap(XFRMMessages.decodeState)
    }

    // MARK: policies

    /// `ip xfrm policy add`: EEXIST if a policy with the same selector, direction and mark exists.
    public func policyAdd(_ p: XFRMPolicy) async throws(KernelError) { try await apply([.policyAdd(p)]) }
    /// `ip xfrm policy update`: creates the policy or replaces the one with the same selector,
    /// direction and mark in one step (how the out template moves to a new SPI).
    public func policyUpdate(_ p: XFRMPolicy) async throws(KernelError) { try await apply([.policyUpdate(p)]) }
    /// `ip xfrm policy delete`: ENOENT if there is no such policy.
    public func policyDelete(_ id: XFRMPolicyID) async throws(KernelError) { try await apply([.policyDelete(id)]) }

    /// `ip xfrm policy get`; nil when there is no such policy.
    public func policyGet(_ id: XFRMPolicyID) async throws(KernelError) -> XFRMPolicyEntry? {
        do {
            return try await socket.request(try XFRMMessages.policyGet(id)).lazy.compactMap(XFRMMessages.decodePolicy).first
        } catch let e where e.errno == .noEntry {
            return nil
        }
    }

    /// Every policy with an address selector (`ip xfrm policy list`); the kernel's per-socket
    /// policies are not in the dump.
    public func policyList() async throws(KernelError) -> [XFRMPolicyEntry] {
        try await socket.request(try XFRMMessages.policyDump()).compactMap(XFRMMessages.decodePolicy)
    }

    // MARK: batches

    /// Applies every operation in one pipelined exchange, in order. XFRM has no transactions: on
    /// failure the others still apply, and the error lists each failed operation by index with
    /// the kernel's reason (a single operation's failure is thrown as itself). Everything is
    /// validated before anything is sent.
    public func apply(_ ops: [XFRMOperation]) async throws(KernelError) {
        if ops.isEmpty { return }
        var requests: [NetlinkRequest] = []
        requests.reserveCapacity(ops.count)
        for op in ops { requests.append(try XFRMMessages.encode(op)) }
        try NetlinkHandle.collect(await socket.transact(requests))
    }
}
