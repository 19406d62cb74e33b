import MeshAPI
import MeshCluster

extension ClusterController {
    /// The one spec pipeline: `APIMapping.clusterServiceSpec` normalises (the API's rules) and converts,
    /// the manager validates (the cluster's rules) and resolves network names.
    public func createService(_ spec: MeshAPI.ServiceSpec) async throws(EngineError) -> ServiceCreateResponse {
        try requireManager()
        var wanted = try APIMapping.clusterServiceSpec(spec)
        if wanted.name.isEmpty { wanted.name = try freeServiceName() }
        let created = try write { m throws(ClusterError) in try m.createService(wanted) }
        return ServiceCreateResponse(ID: created.id)
    }

    /// With `status`, the counts come from the matching services' own tasks (read by the store's service
    /// index), so a filtered `service ls` costs what it lists, not the whole cluster.
    public func listServices(_ filter: ServiceFilter, status: Bool) async throws(EngineError) -> [Service] {
        try requireManager()
        let services = try load { m throws(ClusterError) in try m.store.list(ClusterService.self) }
        let dual = dualStack(try load { m throws(ClusterError) in try m.store.list(ClusterNetwork.self) })
        let matching = services.map { ($0, APIMapping.service($0, dualStack: dual)) }.filter { filter.matches($0.1) }
        guard status else { return matching.map(\.1) }
        let ids = matching.map(\.0.id)
        let tasks = try load { m throws(ClusterError) in
            try m.store.read { tx throws(ClusterError) in
                var out: [String: [ClusterTask]] = [:]
                for id in ids { out[id] = try tx.tasks(serviceID: id) }
                return out
            }
        }
        return matching.map { s, api in
            var api = api
            // The manager's own counting rule, applied to one service's slice of the cluster.
            api.ServiceStatus = ClusterSnapshot(services: [s], tasks: tasks[s.id] ?? []).status(ofService: s.id).map(
                APIMapping.serviceStatus)
            return api
        }
    }

    public func inspectService(_ ref: String) async throws(EngineError) -> Service {
        try requireManager()
        let networks = try load { m throws(ClusterError) in try m.store.list(ClusterNetwork.self) }
        return APIMapping.service(try resolve(ClusterService.self, ref), dualStack: dualStack(networks))
    }

    /// `service update`/`scale`, or with `rollback` a swap back to `PreviousSpec` (the body is ignored).
    /// Renames and mode changes are refused before the version check, in swarmkit's order. A finished
    /// update status is cleared as swarmkit does, so the CLI's progress loop waits for a scale.
    public func updateService(_ ref: String, version: UInt64, spec: MeshAPI.ServiceSpec, rollback: Bool) async throws(EngineError)
        -> ServiceUpdateResponse
    {
        try requireManager()
        if rollback {
            _ = try write { m throws(ClusterError) in try m.rollbackService(ref, version: version) }
            return ServiceUpdateResponse()
        }
        let wanted = try APIMapping.clusterServiceSpec(spec)
        let current = try resolve(ClusterService.self, ref)
        _ = try write { m throws(ClusterError) in
            try m.updateServiceClearingFinishedStatus(current.id, version: version, spec: wanted)
        }
        return ServiceUpdateResponse()
    }

    public func removeService(_ ref: String) async throws(EngineError) {
        try requireManager()
        try write { m throws(ClusterError) in try m.removeService(ref) }
    }

    /// dockerd names a service that was created without a name (`adjective_noun`); these word lists are
    /// meshd's own.
    func freeServiceName() throws(EngineError) -> String {
        let taken = Set(try load { m throws(ClusterError) in try m.store.list(ClusterService.self) }.map(\.spec.name))
        var g = SystemRandomNumberGenerator()
        for _ in 0..<64 {
            let name = "\(Self.adjectives.randomElement(using: &g)!)_\(Self.nouns.randomElement(using: &g)!)"
            if !taken.contains(name) { return name }
        }
        // 576 pairs all taken: a numeric suffix keeps the form and is practically always free.
        return
            "\(Self.adjectives.randomElement(using: &g)!)_\(Self.nouns.randomElement(using: &g)!)_\(UInt32.random(in: 0...UInt32.max, using: &g))"
    }

    static let adjectives = [
        "amber", "brisk", "calm", "deft", "eager", "fond", "gentle", "hardy", "ivory", "jolly", "keen", "lucid",
        "mellow", "nimble", "opal", "plucky", "quiet", "rapid", "steady", "tidy", "upbeat", "vivid", "witty", "zesty",
    ]
    static let nouns = [
        "badger", "cedar", "comet", "delta", "ember", "falcon", "fjord", "harbor", "heron", "island", "juniper", "kestrel",
        "lagoon", "maple", "meadow", "nebula", "otter", "pebble", "quarry", "ridge", "summit", "tundra", "willow", "yarrow",
    ]
}
