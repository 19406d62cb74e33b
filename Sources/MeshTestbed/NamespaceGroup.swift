import Foundation
import MeshKernel
import Synchronization

/// Named namespaces made for one test, bench or demo, all carrying one unique prefix so that runs
/// in parallel (and several meshd nodes on one machine) never collide, and all removed together.
public final class NamespaceGroup: Sendable {
    public let prefix: String
    private let created = Mutex<[String]>([])

    private static let counter = Atomic<Int>(0)

    /// `tag` names what the group is for; the prefix adds the pid and a counter.
    public init(tag: String) {
        let n = Self.counter.add(1, ordering: .relaxed).newValue
        prefix = "\(tag)-\(getpid())-\(n)"
    }

    /// Creates `<prefix>-<role>` and remembers it for `destroy()`.
    public func create(_ role: String) throws -> NetworkNamespace {
        let name = "\(prefix)-\(role)"
        let ns = try NetworkNamespace.create(named: name)
        created.withLock { $0.append(name) }
        return ns
    }

    public func name(_ role: String) -> String { "\(prefix)-\(role)" }

    /// Removes every namespace this group made. Links inside go with them; processes started in
    /// them are the caller's to end first. Safe to call twice.
    public func destroy() {
        let names = created.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for name in names.reversed() { try? NetworkNamespace.delete(named: name) }
    }

    deinit { destroy() }
}
