import Synchronization

/// The shared, live record tables. Writers change the one index in place under the lock, so an
/// update costs what the changed record costs (no copy of the whole table), and the next query
/// sees it: updates are visible as soon as the call returns, far inside the 100 ms budget.
/// Readers hold the lock only for one lookup.
public final class DNSRecordStore: Sendable {
    private let index = Mutex(DNSRecordIndex())

    public init() {}

    public func upsert(_ n: DNSNetwork) { index.withLock { $0.upsert(n) } }
    public func removeNetwork(id: String) { index.withLock { $0.removeNetwork(id) } }
    public func upsert(_ s: DNSService) { index.withLock { $0.upsert(s) } }
    public func removeService(id: String) { index.withLock { $0.removeService(id) } }
    public func upsert(_ t: DNSTask) { index.withLock { $0.upsert(t) } }
    public func removeTask(id: String) { index.withLock { $0.removeTask(id) } }

    /// Applies many changes under one lock hold (a batch from the cluster's watch stream).
    public func update(_ body: (inout DNSRecordIndex) -> Void) { index.withLock { body(&$0) } }

    public func read<T>(_ body: (borrowing DNSRecordIndex) -> T) -> T { index.withLock { body($0) } }
}
