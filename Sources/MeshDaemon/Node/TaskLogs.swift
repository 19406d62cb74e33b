import Foundation
import MeshAPI

/// `service logs`: each task's output fetched from the node that runs it, as docker frames it.
/// Task output files carry no timestamps, so lines are stamped when they are read.
enum TaskLogs {
    typealias Fetch = @Sendable (_ taskID: String, _ nodeID: String) async -> String?

    static func stream(service: String, tasks: [SwarmTask], options: LogOptions, fetch: @escaping Fetch)
        async throws(EngineError) -> AsyncStream<LogMessage>
    {
        let placed = tasks.filter { !$0.NodeID.isEmpty }.sorted { ($0.Slot, $0.ID) < ($1.Slot, $1.ID) }
        return AsyncStream { continuation in
            let work = Task {
                var sent: [String: Int] = [:]  // task → lines already sent
                var first = true
                while !Task.isCancelled {
                    for t in placed {
                        guard let text = await fetch(t.ID, t.NodeID), options.stdout else { continue }
                        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                        if lines.last == "" { lines.removeLast() }
                        var from = sent[t.ID] ?? 0
                        if first, let tail = options.tail { from = max(0, lines.count - tail) }
                        guard from < lines.count else {
                            sent[t.ID] = lines.count
                            continue
                        }
                        let now = Date()
                        for line in lines[from...] {
                            continuation.yield(
                                LogMessage(
                                    stream: .stdout, timestamp: now, line: line, serviceID: service,
                                    nodeID: t.NodeID, taskID: t.ID))
                        }
                        sent[t.ID] = lines.count
                    }
                    first = false
                    guard options.follow else { break }
                    try? await Task.sleep(for: .seconds(1))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in work.cancel() }
        }
    }
}
