import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

/// Kernel tests need root and must not skip silently: without root they fail and say why.
struct NotRoot: Error, CustomStringConvertible {
    var description: String { "kernel tests create network namespaces and need root: run scripts/test as root" }
}

/// A fresh named namespace for one test, with a MeshKernel handle opened inside it and a way to ask
/// the real tools about it. Removed when the test ends, pass or fail.
final class Scratch: Sendable {
    let group: NamespaceGroup
    let ns: NetworkNamespace
    let nl: NetlinkHandle
    var name: String { ns.name! }

    init(_ tag: String = "mkt") throws {
        guard getuid() == 0 else { throw NotRoot() }
        group = NamespaceGroup(tag: tag)
        ns = try group.create("t")
        nl = try NetlinkHandle(namespace: ns)
    }

    /// Another namespace in the same group (removed with it).
    func sibling(_ role: String) throws -> NetworkNamespace { try group.create(role) }

    /// `ip -n <ns> -j <args>` parsed as a JSON array of objects.
    func ip(_ args: String...) throws -> [[String: Any]] {
        try Exec.json(["ip", "-n", name, "-j"] + args) as? [[String: Any]] ?? []
    }

    /// `bridge -n <ns> -j <args>`.
    func bridge(_ args: String...) throws -> [[String: Any]] {
        try Exec.json(["bridge", "-n", name, "-j"] + args) as? [[String: Any]] ?? []
    }
}

/// Runs `body` with a fresh scratch namespace.
func withScratch<T>(_ tag: String = "mkt", _ body: (Scratch) async throws -> T) async throws -> T {
    let s = try Scratch(tag)
    defer { s.group.destroy() }
    return try await body(s)
}

/// Asserts `body` throws a KernelError whose errno is `errno`; returns it for further checks.
@discardableResult
func expectKernelError(
    _ errno: Errno, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> KernelError? {
    do {
        try await body()
        Issue.record("expected \(errno), but it succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let e as KernelError {
        #expect(e.errno == errno, "got \(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected KernelError \(errno), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension Dictionary where Key == String, Value == Any {
    subscript(path path: String...) -> Any? {
        var cur: Any? = self
        for p in path { cur = (cur as? [String: Any])?[p] }
        return cur
    }
}
