/// Errors of the manager core. `description` is the user-facing text, worded like swarmkit/dockerd so the
/// API layer can pass it through; `kind` tells the API layer which HTTP status to use.
public enum ClusterError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No object of `objectKind` ("service", "node", ...) matched `reference`.
    case notFound(objectKind: String, reference: String)
    /// `reference` is a prefix of several IDs.
    case ambiguous(objectKind: String, reference: String, matches: Int)
    /// Another object of the kind already has this name.
    case nameConflict(objectKind: String, name: String)
    /// An object with this ID already exists.
    case idConflict(objectKind: String, id: String)
    /// The caller's version index is not the stored one (optimistic concurrency).
    case outOfSequence(objectKind: String, id: String, expected: UInt64, got: UInt64)
    /// Bad input from the user: a constraint, a subnet, a spec field.
    case invalidArgument(String)
    /// The request is well formed but the cluster state forbids it (rollback without a previous spec...).
    case failedPrecondition(String)
    /// Docker does not support the change either (changing a service's mode).
    case unimplemented(String)
    /// A pool ran dry: VNIs, subnets or addresses.
    case exhausted(String)
    /// The store could not be read or written.
    case storage(String)
    /// A shared store (etcd) refused or could not serve the call: which way, and what it said.
    case store(StoreError)
    /// The swarm is autolocked and this manager has not been given its key (`swarm unlock`).
    case locked

    public enum Kind: Sendable, Equatable {
        case notFound, invalidArgument, conflict, failedPrecondition, unavailable, unimplemented, internalError
    }

    public var kind: Kind {
        switch self {
        case .notFound: .notFound
        case .ambiguous, .invalidArgument: .invalidArgument
        case .nameConflict, .idConflict: .conflict
        case .failedPrecondition: .failedPrecondition
        case .exhausted, .locked: .unavailable
        case .unimplemented: .unimplemented
        case .outOfSequence, .storage: .internalError
        case .store(.claimed): .conflict
        case .store(.unavailable), .store(.fenced): .unavailable
        case .store: .internalError
        }
    }

    /// dockerd's words for a locked manager.
    public static let lockedMessage =
        "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it."

    public var description: String {
        switch self {
        case .notFound(let k, let r): "\(k) \(r) not found"
        case .ambiguous(let k, let r, let n): "\(k) \(r) is ambiguous (\(n) matches found)"
        // dockerd words network conflicts its own way (`network_routes.go`); services come from swarmkit.
        case .nameConflict("network", let n): "network with name \(n) already exists"
        case .nameConflict(let k, let n): "name conflicts with an existing object: \(k) \(n) already exists"
        case .idConflict(let k, let i): "\(k) \(i) already exists"
        // dockerd passes swarmkit's gRPC text through; the CLI shows it verbatim.
        case .outOfSequence: "update out of sequence"
        case .invalidArgument(let m), .failedPrecondition(let m), .unimplemented(let m), .exhausted(let m), .storage(let m): m
        case .store(let e): e.description
        case .locked: Self.lockedMessage
        }
    }
}
