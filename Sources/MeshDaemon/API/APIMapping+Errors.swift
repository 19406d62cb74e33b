import MeshAPI
import MeshCluster

extension APIMapping {
    /// The status and wording dockerd gives the same condition. swarmkit's errors reach the CLI through
    /// dockerd's gRPC-to-HTTP table (InvalidArgument and FailedPrecondition → 400, AlreadyExists → 409,
    /// Unimplemented → 501, anything else → 500), with the gRPC text kept in the message.
    public static func engineError(_ error: ClusterError) -> EngineError {
        switch error {
        case .notFound:
            return .notFound(error.description)
        case .ambiguous:
            return .invalidArgument(error.description)
        case .nameConflict(objectKind: "service", let name):
            return .serviceExists(name)
        case .nameConflict(objectKind: "network", let name):
            // dockerd checks network names itself, before swarmkit, hence no gRPC prefix.
            return .networkExists(name)
        case .nameConflict, .idConflict:
            return .conflict(rpc("AlreadyExists", error.description))
        case .outOfSequence:
            return .updateOutOfSequence
        case .invalidArgument(let m):
            return .invalidArgument(rpc("InvalidArgument", m))
        case .failedPrecondition(let m):
            return .invalidArgument(rpc("FailedPrecondition", m))
        case .unimplemented(let m):
            return .notImplemented(rpc("Unimplemented", m))
        case .exhausted(let m):
            return .internalError(rpc("ResourceExhausted", m))
        case .storage(let m):
            return .internalError(m)
        case .store(.claimed):
            return .conflict(rpc("AlreadyExists", error.description))
        case .store(.unavailable), .store(.fenced):
            // dockerd answers 503 when the swarm has no working leader (no quorum, a failover).
            return .unavailable(rpc("Unavailable", error.description))
        case .store:
            return .internalError(error.description)
        case .locked:
            return .swarmLocked
        }
    }
}
