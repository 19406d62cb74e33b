import Foundation

struct NotRoot: Error, CustomStringConvertible {
    var description: String { "dataplane system tests create network namespaces and need root: run scripts/test as root" }
}

/// Fail, never skip, when not root: CI runs as root.
func requireRoot() throws { guard getuid() == 0 else { throw NotRoot() } }
