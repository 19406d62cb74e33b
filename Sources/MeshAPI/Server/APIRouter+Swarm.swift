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
            let rotate = SwarmRotation(workerToken: r.bool("rotateWorkerToken"), managerToken: r.bool("rotateManagerToken"),
                                       managerUnlockKey: r.bool("rotateManagerUnlockKey"))
            try await backend.updateSwarm(spec, version: version, rotate: rotate)
            return .empty()
        case (.GET, "unlockkey", 2):
            return .json(UnlockKeyResponse(UnlockKey: try await backend.unlockKey()))
        default:
            throw Self.pageNotFound
        }
    }

    func nodes(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        switch (r.method, s.count) {
        case (.GET, 1), (.HEAD, 1):
            let filter = NodeFilter(try FilterArgs.parse(r.query["filters"], allowed: NodeFilter.keys))
            return .json(try await backend.listNodes(filter))
        case (.GET, 2), (.HEAD, 2):
            return .json(try await backend.inspectNode(s[1]))
        case (.DELETE, 2):
            try await backend.removeNode(s[1], force: r.bool("force"))
            return .empty()
        case (.POST, 3) where s[2] == "update":
            let version = try r.objectVersion(kind: "node")
            let spec = try r.decode(NodeSpec.self)
            guard NodeSpec.roles.contains(spec.Role) else { throw .invalidArgument("invalid role \(spec.Role), only worker and manager are supported") }
            guard NodeSpec.availabilities.contains(spec.Availability) else {
                throw .invalidArgument("invalid availability \(spec.Availability), only active, pause and drain are supported")
            }
            if let labels = spec.Labels, labels.count > 1024 { throw .invalidArgument("too many labels") }
            try await backend.updateNode(s[1], version: version, spec: spec)
            return .empty()
        default:
            throw Self.pageNotFound
        }
    }

    func tasks(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        switch (r.method, s.count) {
        case (.GET, 1), (.HEAD, 1):
            let args = try FilterArgs.parse(r.query["filters"], allowed: TaskFilter.keys)
            _ = try args.bool("_up-to-date")
            return .json(try await backend.listTasks(TaskFilter(args)))
        case (.GET, 2), (.HEAD, 2):
            return .json(try await backend.inspectTask(s[1]))
        default:
            throw Self.pageNotFound
        }
    }

    func networks(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        switch (r.method, s.count) {
        case (.GET, 1), (.HEAD, 1):
            let args = try FilterArgs.parse(r.query["filters"], allowed: NetworkFilter.keys)
            _ = try args.bool("dangling")
            return .json(try await backend.listNetworks(NetworkFilter(args)))
        case (.POST, 2) where s[1] == "create":
            let request = try r.decode(NetworkCreateRequest.self)
            guard !request.Name.isEmpty, request.Name.utf8.count <= 128 else { throw .invalidArgument("invalid network name \"\(request.Name.prefix(128))\"") }
            if ["bridge", "host", "none"].contains(request.Name) {
                throw .forbidden("\(request.Name) is a pre-defined network and cannot be created")
            }
            let driver = request.Driver ?? ""
            guard driver.isEmpty || driver == "overlay" else {
                throw .invalidArgument("meshd only creates overlay networks (driver \(driver) is not supported)")
            }
            if let configs = request.IPAM?.Config, configs.count > 16 { throw .invalidArgument("too many IPAM configs") }
            return .json(try await backend.createNetwork(request), status: .created)
        case (.POST, 2) where s[1] == "prune":
            return .json(NetworkPruneResponse(NetworksDeleted: try await backend.pruneNetworks()))
        case (.GET, 2), (.HEAD, 2):
            let scope = r.query["scope"].flatMap { $0.isEmpty ? nil : $0 }
            return .json(try await backend.inspectNetwork(s[1], scope: scope))
        case (.DELETE, 2):
            try await backend.removeNetwork(s[1])
            return .empty(.noContent)
        default:
            throw Self.pageNotFound
        }
    }
}
