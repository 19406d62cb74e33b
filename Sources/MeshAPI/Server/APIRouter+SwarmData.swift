import Foundation
import NIOHTTP1

extension APIRouter {
    /// `/secrets` and `/configs`: create, list, inspect, update (labels only), remove, as dockerd routes
    /// them (201 with the ID on create, 200 with no body on update, 204 on remove).
    func swarmData(_ kind: SwarmDataKind, _ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        switch (r.method, s.count) {
        case (.GET, 1), (.HEAD, 1):
            let filter = SwarmDataFilter(try FilterArgs.parse(r.query["filters"], allowed: SwarmDataFilter.keys))
            return .json(try await backend.listSwarmData(kind, filter))
        case (.POST, 2) where s[1] == "create":
            let spec = try r.decode(SwarmDataSpec.self)
            try Self.checkSwarmData(kind, spec)
            return .json(try await backend.createSwarmData(kind, spec), status: .created)
        case (.GET, 2), (.HEAD, 2):
            return .json(try await backend.inspectSwarmData(kind, s[1]))
        case (.DELETE, 2):
            try await backend.removeSwarmData(kind, s[1])
            return .empty(.noContent)
        case (.POST, 3) where s[2] == "update":
            let version = try r.objectVersion(kind: kind.rawValue)
            let spec = try r.decode(SwarmDataSpec.self)
            try Self.checkSwarmData(kind, spec)
            try await backend.updateSwarmData(kind, s[1], version: version, spec: spec)
            return .empty()
        default:
            throw Self.pageNotFound
        }
    }

    /// What the request's form allows: base64 data, no secret store plugin (meshd keeps secrets itself),
    /// no driver on a config (the API has none).
    static func checkSwarmData(_ kind: SwarmDataKind, _ spec: SwarmDataSpec) throws(EngineError) {
        if let d = spec.Data, !d.isEmpty, Data(base64Encoded: d) == nil {
            throw .invalidArgument("Data: not valid base64")
        }
        if let driver = spec.Driver, !driver.Name.isEmpty {
            throw .invalidArgument(
                kind == .secret
                    ? "Driver: secret drivers (\(driver.Name)) are not supported by meshd: the manager stores secrets itself"
                    : "Driver: configs have no driver")
        }
        if let labels = spec.Labels, labels.count > 1024 { throw .invalidArgument("too many labels") }
    }
}
