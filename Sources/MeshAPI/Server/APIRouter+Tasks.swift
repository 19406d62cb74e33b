import NIOHTTP1

extension APIRouter {
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
}
