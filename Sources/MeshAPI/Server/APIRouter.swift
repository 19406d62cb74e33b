import Foundation
import NIOHTTP1

/// Maps a request to the backend and the backend's answer (or error) to HTTP. Never throws:
/// every failure becomes a JSON error with dockerd's status code.
public struct APIRouter: Sendable {
    public let backend: any EngineBackend
    public let configuration: APIServerConfiguration

    public init(backend: any EngineBackend, configuration: APIServerConfiguration = APIServerConfiguration()) {
        self.backend = backend
        self.configuration = configuration
    }

    /// Headers dockerd puts on every answer.
    var commonHeaders: [(String, String)] {
        [
            ("Api-Version", APIVersion.current.description), ("Ostype", "linux"),
            ("Server", "meshd/\(configuration.engineVersion) (linux)"),
        ]
    }

    /// `forwarding: false`: answer here even if the backend would hand cluster requests to another
    /// manager (a request that was forwarded once already).
    public func handle(
        method: HTTPMethod, uri: String, contentType: String?, body: [UInt8], registryAuth: String? = nil, forwarding: Bool = true
    ) async -> APIResponse {
        var response: APIResponse
        if forwarding, Self.isClusterRequest(method: method, uri: uri),
            let forwarded = await backend.forwardToLeader(
                method: method.rawValue, uri: uri, contentType: contentType, body: body, registryAuth: registryAuth)
        {
            return forwarded
        }
        do {
            var request = try APIRequest(method: method, uri: uri, contentType: contentType, body: body)
            request.registryAuth = registryAuth
            response = try await route(request)
        } catch {
            response = .error(error)
        }
        response.headers = commonHeaders + response.headers
        return response
    }

    /// Requests about the swarm's shared state, which the leading manager answers: nodes, services,
    /// tasks, networks, secrets, configs and the swarm object itself. Not this node's own membership
    /// (init, join, leave, unlock), its containers, images or volumes, nor `/info` and `/events`.
    public static func isClusterRequest(method: HTTPMethod, uri: String) -> Bool {
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        var segments = path.split(separator: "/").map(String.init)
        // `/v1.47/…`: the version prefix says nothing about where the request goes.
        if let first = segments.first, first.hasPrefix("v"), Double(first.dropFirst()) != nil { segments.removeFirst() }
        guard let head = segments.first else { return false }
        switch head {
        case "swarm":
            return !(segments.count == 2 && ["init", "join", "leave", "unlock"].contains(segments[1]))
        case "nodes", "services", "tasks", "networks", "secrets", "configs": return true
        default: return false
        }
    }

    /// The same with the method by name (`GET`, `POST`, …), for callers without NIOHTTP1.
    public func handle(
        methodName: String, uri: String, contentType: String?, body: [UInt8], registryAuth: String? = nil, forwarding: Bool = true
    ) async -> APIResponse {
        await handle(
            method: HTTPMethod(rawValue: methodName), uri: uri, contentType: contentType, body: body, registryAuth: registryAuth,
            forwarding: forwarding)
    }

    func route(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        guard let head = s.first else { throw Self.pageNotFound }
        switch head {
        case "_ping": return try await ping(r)
        case "version" where s.count == 1:
            try allow(r, .GET)
            return .json(version())
        case "info" where s.count == 1:
            try allow(r, .GET)
            return .json(await info())
        case "swarm": return try await swarm(r)
        case "nodes": return try await nodes(r)
        case "services": return try await services(r)
        case "tasks": return try await tasks(r)
        case "networks": return try await networks(r)
        case "events" where s.count == 1 && r.method == .GET: return try await events(r)
        case "distribution" where s.count >= 3 && s.last == "json" && r.method == .GET:
            try r.refuseRegistryCredentials()
            let image = s.dropFirst().dropLast().joined(separator: "/")
            return .json(try await backend.distributionInspect(image))
        case "images": return try await images(r)
        case "volumes": return try await volumes(r)
        case "secrets": return try await swarmData(.secret, r)
        case "configs": return try await swarmData(.config, r)
        case "containers": return try await containers(r)
        case "exec": return try await exec(r)
        default: throw Self.pageNotFound
        }
    }

    static let pageNotFound = EngineError.notFound("page not found")

    /// A known path asked with another method is unknown to dockerd's router as well.
    func allow(_ r: APIRequest, _ method: HTTPMethod) throws(EngineError) {
        guard r.method == method || (method == .GET && r.method == .HEAD) else { throw Self.pageNotFound }
    }

    // MARK: system

    func ping(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        guard r.segments.count == 1, r.method == .GET || r.method == .HEAD else { throw Self.pageNotFound }
        let swarm = await backend.swarmInfo()
        let headers = [
            ("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache"),
            ("Docker-Experimental", "false"), ("Builder-Version", "2"), ("Swarm", swarm.pingHeader),
            ("Content-Type", "text/plain; charset=utf-8"),
        ]
        return APIResponse(status: .ok, headers: headers, body: .bytes(r.method == .HEAD ? [] : Array("OK".utf8)))
    }

    func version() -> VersionInfo {
        let h = configuration.host
        let details = [
            "ApiVersion": APIVersion.current.description, "MinAPIVersion": APIVersion.minimum.description,
            "GitCommit": "meshd", "GoVersion": "swift", "Os": "linux", "Arch": h.goArch, "KernelVersion": h.kernelVersion,
            "BuildTime": "", "Experimental": "false",
        ]
        return VersionInfo(
            Platform: .init(Name: "meshd"),
            Components: [.init(Name: "Engine", Version: configuration.engineVersion, Details: details)],
            Version: configuration.engineVersion, ApiVersion: APIVersion.current.description,
            MinAPIVersion: APIVersion.minimum.description, GitCommit: "meshd", GoVersion: "swift", Os: "linux",
            Arch: h.goArch, KernelVersion: h.kernelVersion, BuildTime: "")
    }

    func info() async -> SystemInfo {
        let h = configuration.host
        let swarm = await backend.swarmInfo()
        let counts = await backend.containerCounts()
        // Images as `docker image ls` lists them; an engine without a store has none.
        let images = (try? await backend.listImages().count) ?? 0
        return SystemInfo(
            ID: swarm.NodeID, Containers: counts.total, ContainersRunning: counts.running, ContainersPaused: 0,
            ContainersStopped: counts.stopped, Images: images,
            Driver: "meshd", NCPU: h.cpus, MemTotal: h.memoryBytes, Name: h.hostname,
            ServerVersion: configuration.engineVersion, KernelVersion: h.kernelVersion, OperatingSystem: h.operatingSystem,
            OSType: "linux", Architecture: h.architecture, DockerRootDir: configuration.dataRoot, Labels: [],
            ExperimentalBuild: false, Swarm: swarm, Warnings: nil)
    }
}
