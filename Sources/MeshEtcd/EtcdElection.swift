import Foundation
import MeshCluster
import Synchronization

/// Leader election among managers on etcd, the scheme of etcd's own `concurrency.Election`: each candidate
/// holds a lease and puts `election/<lease hex>` (if absent) on it; the candidate whose key was created first
/// leads, and the others wait until every older key is gone (resigned, or its lease expired). The leader's
/// fencing token is its key and that key's create revision: writes guarded by it (`EtcdClusterStore.fence`)
/// fail once another candidate leads.
///
/// A leader that cannot renew its lease steps down by itself once `ttl - 1` seconds have passed since its last
/// successful renewal, before etcd can let its lease expire and hand leadership on, so two managers never both
/// believe they lead for longer than the clock skew between them.
public final class EtcdElection: Sendable {
    public enum Event: Sendable, Equatable {
        /// This candidate leads; guard every write with the fence.
        case leading(EtcdFence)
        /// It no longer leads (lease lost, renewals failing, resigned); the reason says which.
        case steppedDown(String)
    }

    public let client: EtcdClient
    public let keys: EtcdKeys
    /// What the leader key holds (e.g. `nodeID@addr:2377`), what followers read to find the leader.
    public let value: String
    public let ttl: Int64

    private struct State {
        var lease: Int64?
        var fence: EtcdFence?
        var lastRenewal = ContinuousClock.now
        var tasks: [Task<Void, Never>] = []
        var continuation: AsyncStream<Event>.Continuation?
        var stopped = false
    }

    private let state = Mutex(State())

    public init(client: EtcdClient, keys: EtcdKeys = EtcdKeys(), value: String, ttl: Int64 = 5) {
        self.client = client
        self.keys = keys
        self.value = value
        self.ttl = max(2, ttl)
    }

    /// The fence while this candidate leads.
    public var fence: EtcdFence? { state.withLock { $0.fence } }
    public var isLeader: Bool { fence != nil }

    /// The value of the current leader's key (the oldest campaign key), nil if nobody campaigns.
    /// `serializable`: the member's own copy, answered without a quorum (possibly stale).
    public func leader(serializable: Bool = false) throws(StoreError) -> String? {
        let prefix = keys.election
        var request = RangeRequest(key: prefix, rangeEnd: EtcdKey.prefixEnd(prefix))
        if serializable { request.serializable = true }
        let r = try client.range(request)
        let oldest = (r.kvs ?? []).min { $0.createRevision < $1.createRevision }
        return oldest.map { String(decoding: $0.value ?? Data(), as: UTF8.self) }
    }

    /// Grants the lease, puts the campaign key and starts renewing; returns the events: `leading` once every
    /// older key is gone, `steppedDown` when leadership (or the candidacy) ends. Campaigns once.
    public func campaign() async throws(StoreError) -> AsyncStream<Event> {
        let (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        let lease = try await client.grantLease(ttl: ttl).id
        let key = keys.election + Data(String(lease, radix: 16).utf8)
        let put = try await client.txn(
            TxnRequest(
                compare: [.createRevision(key, is: 0)],
                success: [.put(PutRequest(key: key, value: Data(value.utf8), lease: lease))],
                failure: [.range(RangeRequest(key: key))]))
        guard put.succeeded == true, let created = put.header?.revision?.value else {
            try? await client.revoke(lease: lease)
            throw .conflict(key: keys.describe(key), expected: 0, found: put.header?.revision?.value ?? 0)
        }
        state.withLock {
            $0.lease = lease
            $0.lastRenewal = .now
            $0.continuation = continuation
        }
        let renew = Task { [self] in await self.renew(lease: lease) }
        let wait = Task { [self] in await self.waitForTurn(key: key, created: created) }
        state.withLock { $0.tasks = [renew, wait] }
        continuation.onTermination = { [self] _ in Task { await self.resign() } }
        return events
    }

    /// Gives leadership (or the candidacy) up: stops renewing and revokes the lease, which deletes the key at
    /// once so the next candidate leads without waiting for the TTL.
    public func resign() async {
        let lease = stop(reason: "resigned")
        if let lease { try? await client.revoke(lease: lease) }
    }

    /// Stops renewing without revoking: what a killed or frozen manager looks like to etcd (the lease runs out).
    public func abandon() { _ = stop(reason: "abandoned") }

    @discardableResult
    private func stop(reason: String) -> Int64? {
        let (lease, tasks, continuation, wasLeader) = state.withLock { s in
            defer {
                s.tasks = []
                s.lease = nil
                s.fence = nil
                s.stopped = true
                s.continuation = nil
            }
            return (s.lease, s.tasks, s.continuation, s.fence != nil)
        }
        for t in tasks { t.cancel() }
        if wasLeader { continuation?.yield(.steppedDown(reason)) }
        continuation?.finish()
        return lease
    }

    /// Renews every third of the TTL. A renewal that says the lease is gone ends leadership at once; renewals
    /// that fail (etcd unreachable) end it once `ttl - 1` s have passed without one succeeding. After a
    /// failure it tries again every 250 ms: a renewal can fail quickly while etcd elects a new leader (a
    /// second or two, e.g. when a partitioned member rejoins with a higher term, or the member it asked is
    /// gone), and two misses a third of the TTL apart would outlast the limit although etcd was back in
    /// between.
    private func renew(lease: Int64) async {
        let period = Duration.milliseconds(ttl * 1000 / 3)
        let limit = Duration.seconds(ttl - 1)
        var wait = period
        while !Task.isCancelled {
            try? await Task.sleep(for: wait)
            if Task.isCancelled { return }
            // A renewal that hangs (etcd stopped, a link dropping everything) is bounded by what is left
            // of the limit: the transport's own timeouts, tried member after member, can outlast it.
            let budget = limit - (ContinuousClock.now - state.withLock { $0.lastRenewal })
            switch await Self.keepAlive(client, lease: lease, within: budget) {
            case .answered(let left) where left <= 0:
                stepDown(reason: "lease \(String(lease, radix: 16)) expired")
                return
            case .answered:
                state.withLock { $0.lastRenewal = .now }
                wait = period
            case .failed(let error):
                let since = ContinuousClock.now - state.withLock { $0.lastRenewal }
                if since >= limit {
                    stepDown(reason: "no lease renewal for \(since): \(error)")
                    return
                }
                wait = min(period, .milliseconds(250))
            case .timedOut:
                let since = ContinuousClock.now - state.withLock { $0.lastRenewal }
                stepDown(reason: "no lease renewal for \(since): the renewal did not answer")
                return
            }
        }
    }

    enum RenewalOutcome: Sendable {
        case answered(Int64)
        case failed(StoreError)
        case timedOut
    }

    /// One keep-alive, raced against `budget`. Not a task group: a group waits for all its children, and
    /// a call that ignores cancellation would hold the answer until it ends. The call is left to end on
    /// its own (cancelled, for a transport that listens).
    static func keepAlive(_ client: EtcdClient, lease: Int64, within budget: Duration) async -> RenewalOutcome {
        guard budget > .zero else { return .timedOut }
        let first = FirstOutcome()
        return await withCheckedContinuation { (c: CheckedContinuation<RenewalOutcome, Never>) in
            first.set(c)
            let call = Task {
                let outcome: RenewalOutcome
                do throws(StoreError) { outcome = .answered(try await client.keepAlive(lease: lease)) } catch { outcome = .failed(error) }
                first.resume(outcome)
            }
            let timer = Task {
                try? await Task.sleep(for: budget)
                if first.resume(.timedOut) { call.cancel() }
            }
            first.onResume { timer.cancel() }
        }
    }

    /// Returns at the first deletion the watch reports, when it ends or fails, or after `limit`.
    static func firstDelete(in changes: AsyncThrowingStream<WatchResponse, any Error>, within limit: Duration) async {
        await withTaskGroup(of: Void.self) { g in
            g.addTask {
                do {
                    for try await message in changes {
                        if message.canceled == true { return }
                        if let events = message.events, events.contains(where: \.isDelete) { return }
                    }
                } catch {}
            }
            g.addTask { try? await Task.sleep(for: limit) }
            await g.next()
            g.cancelAll()
        }
    }

    private func stepDown(reason: String) {
        let lease = stop(reason: reason)
        // Best effort: if etcd is reachable after all, let the next candidate in now.
        if let lease { Task { [client] in try? await client.revoke(lease: lease) } }
    }

    /// Leads once no campaign key older than ours is left: checked, then re-checked on every change to the
    /// election keys (a watch, not a poll).
    private func waitForTurn(key: Data, created: Int64) async {
        let prefix = keys.election
        var from = created
        while !Task.isCancelled {
            do {
                // Keys, not a count: etcd counts the range before it filters by create revision.
                let older = try client.range(
                    RangeRequest(key: prefix, rangeEnd: EtcdKey.prefixEnd(prefix), keysOnly: true, maxCreateRevision: created - 1))
                if (older.kvs ?? []).isEmpty {
                    let fence = EtcdFence(key: key, createRevision: created)
                    let continuation = state.withLock { s -> AsyncStream<Event>.Continuation? in
                        guard !s.stopped else { return nil }
                        s.fence = fence
                        return s.continuation
                    }
                    continuation?.yield(.leading(fence))
                    return
                }
                from = max(from, older.header?.revision?.value ?? from)
                let changes = client.watch(
                    WatchCreateRequest(key: prefix, range_end: EtcdKey.prefixEnd(prefix), start_revision: EtcdInt(from + 1)))
                // A watch on a member that was cut off is silent, not failed: after half a TTL without news the
                // keys are read again (through whichever member answers), so a partition cannot hold
                // this candidate back past the old leader's lease.
                await Self.firstDelete(in: changes, within: .milliseconds(ttl * 500))
            } catch {
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

/// The first of several racers resumes the continuation; the others find it taken.
final class FirstOutcome: Sendable {
    private let state = Mutex<
        (continuation: CheckedContinuation<EtcdElection.RenewalOutcome, Never>?, done: Bool, after: (@Sendable () -> Void)?)
    >(
        (nil, false, nil))

    func set(_ c: CheckedContinuation<EtcdElection.RenewalOutcome, Never>) { state.withLock { $0.continuation = c } }

    /// Runs `body` once the race is decided (at once if it already is).
    func onResume(_ body: @escaping @Sendable () -> Void) {
        let run = state.withLock { s -> Bool in
            if s.done { return true }
            s.after = body
            return false
        }
        if run { body() }
    }

    /// True for the racer that won.
    @discardableResult
    func resume(_ outcome: EtcdElection.RenewalOutcome) -> Bool {
        let taken = state.withLock { s -> (CheckedContinuation<EtcdElection.RenewalOutcome, Never>, (@Sendable () -> Void)?)? in
            guard !s.done, let c = s.continuation else { return nil }
            s.done = true
            s.continuation = nil
            defer { s.after = nil }
            return (c, s.after)
        }
        guard let (c, after) = taken else { return false }
        c.resume(returning: outcome)
        after?()
        return true
    }
}
