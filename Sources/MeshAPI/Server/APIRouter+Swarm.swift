import NIOHTTP1

extension APIRouter {
    func swarm(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        switch (r.method, r.segments.count > 1 ? r.segments[1] : nil, r.segments.count) {
        case (.GET, nil, 1), (.HEAD, nil, 1):
            return .json(try await backend.inspectSwarm())
        case (.POST, "init", 2):
            let request = try r.decode(SwarmInitRequest.self)
            if let pool = request.DefaultAddrPool, pool.count > 256 { throw .invalidArgument("too many default address pools") }
            if let size = request.SubnetSize, size != 0, size > 29 || size < 8 {
                throw .invalidArgument("rpc error: code = InvalidArgument desc = invalid SubnetSize \(size)")
            }
            if let a = request.Availability, !a.isEmpty, !NodeSpec.availabilities.contains(a) {
                throw .invalidArgument("invalid Availability \(a)")
            }
            return .json(try await backend.initSwarm(request))
        case (.POST, "join", 2):
            let request = try r.decode(SwarmJoinRequest.self)
            guard !request.RemoteAddrs.isEmpty, request.RemoteAddrs.count <= 64 else {
                throw .invalidArgument("at least 1 RemoteAddr is required to join")
            }
            try await backend.joinSwarm(request)
            return .empty()
        case (.POST, "leave", 2):
            try await backend.leaveSwarm(force: r.bool("force"))
            return .empty()
        case (.POST, "update", 2):
            let version = try r.objectVersion(kind: "swarm")
            let spec = try r.decode(SwarmSpec.self)
            let rotate = SwarmRotation(
                workerToken: r.bool("rotateWorkerToken"), managerToken: r.bool("rotateManagerToken"),
                managerUnlockKey: r.bool("rotateManagerUnlockKey"))
            try await backend.updateSwarm(spec, version: version, rotate: rotate)
            return .empty()
        case (.POST, "unlock", 2):
            let request = try r.decode(SwarmUnlockRequest.self)
            try await backend.unlockSwarm(request.UnlockKey)
            return .empty()
        case (.GET, "unlockkey", 2):
            return .json(UnlockKeyResponse(UnlockKey: try await backend.unlockKey()))
        default:
            throw Self.pageNotFound
        }
    }
}
