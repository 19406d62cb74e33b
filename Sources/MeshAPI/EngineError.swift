/// What a backend throws. Each case has the HTTP status dockerd gives the same condition; the
/// message reaches the user as `Error response from daemon: <message>`.
public enum EngineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 400: bad parameters, a failed precondition, an ambiguous name.
    case invalidArgument(String)
    /// 401: `swarm unlock` with the wrong key.
    case unauthorized(String)
    /// 403: e.g. creating a network with a predefined name.
    case forbidden(String)
    /// 404: no such object (`service X not found`).
    case notFound(String)
    /// 409: a name already taken.
    case conflict(String)
    /// 413: a request body above the server's limit.
    case tooLarge(String)
    /// 500: an internal failure, and a stale `?version=` (`update out of sequence`), as swarmkit answers it.
    case internalError(String)
    /// 501: a change swarmkit refuses as unimplemented (changing a service's mode).
    case notImplemented(String)
    /// 503: not a manager, not in a swarm, already in a swarm.
    case unavailable(String)

    public var status: Int {
        switch self {
        case .invalidArgument: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .conflict: 409
        case .tooLarge: 413
        case .internalError: 500
        case .notImplemented: 501
        case .unavailable: 503
        }
    }

    public var message: String {
        switch self {
        case .invalidArgument(let m), .unauthorized(let m), .forbidden(let m), .notFound(let m), .conflict(let m), .tooLarge(let m),
            .internalError(let m), .notImplemented(let m), .unavailable(let m):
            m
        }
    }

    public var description: String { "\(status): \(message)" }
}

/// dockerd's and swarmkit's wording for the conditions every backend meets, so that scripts
/// matching docker's messages keep working.
public extension EngineError {
    static let notInSwarm = EngineError.unavailable(
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.")
    static let notAManager = EngineError.unavailable(
        "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."
    )
    static let alreadyInSwarm = EngineError.unavailable(
        "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.")
    static let notPartOfSwarm = EngineError.unavailable("This node is not part of a swarm")
    static let lastManagerLeaving = EngineError.unavailable(
        "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. "
    )
    /// dockerd's ErrSwarmLocked: a restarted manager of an autolocked swarm before `swarm unlock`.
    static let swarmLocked = EngineError.unavailable(
        "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.")
    /// dockerd's notLockedError (a Conflict) and invalidUnlockKey (Unauthorized).
    static let swarmNotLocked = EngineError.conflict("swarm is not locked")
    static let invalidUnlockKey = EngineError.unauthorized("swarm could not be unlocked: invalid key provided")
    static let updateOutOfSequence = EngineError.internalError("rpc error: code = Unknown desc = update out of sequence")

    /// This engine runs no container by that name or id: none of this node's tasks.
    static func noSuchContainer(_ ref: String) -> EngineError { .notFound("No such container: \(ref)") }
    static func noSuchExec(_ id: String) -> EngineError { .notFound("No such exec instance: \(id)") }

    static func serviceExists(_ name: String) -> EngineError {
        .conflict("rpc error: code = AlreadyExists desc = name conflicts with an existing object: service \(name) already exists")
    }
    static func networkExists(_ name: String) -> EngineError { .conflict("network with name \(name) already exists") }
    static func noPreviousSpec(_ serviceID: String) -> EngineError {
        .invalidArgument("rpc error: code = FailedPrecondition desc = service \(serviceID) does not have a previous spec")
    }
    static func nodeNotDown(_ nodeID: String) -> EngineError {
        .invalidArgument("rpc error: code = FailedPrecondition desc = node \(nodeID) is not down and can't be removed")
    }
    static let demoteLastManager = EngineError.invalidArgument(
        "rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm")
}
