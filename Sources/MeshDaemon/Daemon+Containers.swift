import MeshAPI

/// The container and exec endpoints: this node's own containers (`NodeContainers`), none
/// outside a swarm, as a node's dockerd shows only its own.
extension Daemon {
    public func listContainers(_ options: ContainerListOptions) async throws(EngineError) -> [ContainerSummary] {
        guard let c = nodeContainers() else { return [] }
        return await c.list(options)
    }

    public func inspectContainer(_ ref: String) async throws(EngineError) -> ContainerInspect {
        guard let c = nodeContainers() else { throw .noSuchContainer(ref) }
        return try await c.inspect(ref)
    }

    public func containerLogs(_ ref: String, options: LogOptions) async throws(EngineError) -> AsyncStream<OutputChunk> {
        guard let c = nodeContainers() else { throw .noSuchContainer(ref) }
        return try await c.logs(ref, options: options)
    }

    public func waitContainer(_ ref: String) async throws(EngineError) -> AsyncStream<ContainerWaitResponse> {
        guard let c = nodeContainers() else { throw .noSuchContainer(ref) }
        return try await c.wait(ref)
    }

    public func killContainer(_ ref: String, signal: String?) async throws(EngineError) {
        guard let c = nodeContainers() else { throw .noSuchContainer(ref) }
        try await c.kill(ref, signal: signal)
    }

    public func containerCounts() async -> ContainerCounts {
        guard let c = nodeContainers() else { return ContainerCounts() }
        return await c.counts()
    }

    public func createExec(_ ref: String, _ request: ExecCreateRequest) async throws(EngineError) -> String {
        guard let c = nodeContainers() else { throw .noSuchContainer(ref) }
        return try await c.createExec(ref, request)
    }

    public func startExec(_ id: String, _ request: ExecStartRequest) async throws(EngineError) -> ExecAttachment? {
        guard let c = nodeContainers() else { throw .noSuchExec(id) }
        return try await c.startExec(id, request)
    }

    public func resizeExec(_ id: String, rows: UInt16, columns: UInt16) async throws(EngineError) {
        guard let c = nodeContainers() else { throw .noSuchExec(id) }
        try await c.resizeExec(id, rows: rows, columns: columns)
    }

    public func inspectExec(_ id: String) async throws(EngineError) -> ExecInspect {
        guard let c = nodeContainers() else { throw .noSuchExec(id) }
        return try await c.inspectExec(id)
    }
}
