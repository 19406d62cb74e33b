import Foundation
import Synchronization

/// Fans short change notices ("service", "task", "traffic") out to every open cluster page. A
/// page that falls behind loses only notices, never state: each one just makes it fetch the view
/// again, so the newest few are all it needs.
public final class ChangeBroadcast: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<String>.Continuation]>([:])

    public init() {}

    public func publish(_ notice: String) {
        for c in subscribers.withLock({ Array($0.values) }) { c.yield(notice) }
    }

    public func subscribe() -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(8))
        let id = UUID()
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in _ = self?.subscribers.withLock { $0.removeValue(forKey: id) } }
        return stream
    }

    public var count: Int { subscribers.withLock { $0.count } }
}
