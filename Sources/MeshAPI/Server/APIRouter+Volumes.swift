import NIOHTTP1

extension APIRouter {
    /// `GET /volumes`, `POST /volumes/create`, `GET|DELETE /volumes/{name}`: the node's own local volumes.
    func volumes(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        switch (r.method, s.count) {
        case (.GET, 1), (.HEAD, 1):
            // dockerd's filters (dangling, driver, label, name) are not applied here: refused by name.
            _ = try FilterArgs.parse(r.query["filters"], allowed: [])
            return .json(VolumeListResponse(Volumes: try await backend.listVolumes()))
        case (.POST, 2) where s[1] == "create":
            let request = try r.decode(VolumeCreateRequest.self)
            if let d = request.Driver, !d.isEmpty, d != "local" {
                throw .notFound("plugin \"\(d)\" not found: meshd has the local volume driver only")
            }
            if let o = request.DriverOpts, !o.isEmpty {
                throw .invalidArgument(
                    "DriverOpts (\(o.keys.sorted().joined(separator: ", "))): meshd's local volumes are plain directories")
            }
            if request.ClusterVolumeSpec != nil { throw .invalidArgument("ClusterVolumeSpec: meshd has no cluster volumes") }
            return .json(try await backend.createVolume(name: request.Name ?? "", labels: request.Labels ?? [:]), status: .created)
        case (.GET, 2), (.HEAD, 2):
            return .json(try await backend.inspectVolume(s[1]))
        case (.DELETE, 2):
            try await backend.removeVolume(s[1], force: r.bool("force"))
            return .empty(.noContent)
        default:
            throw Self.pageNotFound
        }
    }
}
