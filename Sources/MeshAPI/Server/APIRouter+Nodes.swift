import NIOHTTP1

extension APIRouter {
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
            guard NodeSpec.roles.contains(spec.Role) else {
                throw .invalidArgument("invalid role \(spec.Role), only worker and manager are supported")
            }
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
}
