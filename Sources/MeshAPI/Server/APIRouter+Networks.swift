import NIOHTTP1

extension APIRouter {
    func networks(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        switch (r.method, s.count) {
        case (.GET, 1), (.HEAD, 1):
            let args = try FilterArgs.parse(r.query["filters"], allowed: NetworkFilter.keys)
            _ = try args.bool("dangling")
            return .json(try await backend.listNetworks(NetworkFilter(args)))
        case (.POST, 2) where s[1] == "create":
            let request = try r.decode(NetworkCreateRequest.self)
            guard !request.Name.isEmpty, request.Name.utf8.count <= 128 else {
                throw .invalidArgument("invalid network name \"\(request.Name.prefix(128))\"")
            }
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
