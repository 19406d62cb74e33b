import Synchronization

/// The networks one attached namespace is on: what its queries may see. Changed when the task
/// joins or leaves a network, read once per query.
public final class DNSScope: Sendable {
    private let current: Mutex<[String]>
    public init(networks: [String]) { current = Mutex(networks) }
    public var networks: [String] {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }
}

/// What every handler of one server shares.
struct DNSServingContext: Sendable {
    let processor: DNSQueryProcessor
    let store: DNSRecordStore
    let forwarder: DNSForwarder
    let scope: DNSScope
    let metrics: DNSMetrics
}
