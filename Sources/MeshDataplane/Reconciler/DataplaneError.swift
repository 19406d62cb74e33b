import MeshKernel

/// Why the dataplane refused or failed a state.
public enum DataplaneError: Error, Sendable, CustomStringConvertible {
    /// The state contradicts itself; nothing was touched. One line per problem.
    case invalidState([String])
    /// The kernel refused part of an apply. `object` names what meshd was making; what had been
    /// applied in that namespace during this apply was undone (`rolledBack`).
    case kernel(namespace: String, object: String, error: KernelError, rolledBack: Bool)
    /// A namespace the state names could not be opened.
    case namespace(String, KernelError)

    public var description: String {
        switch self {
        case .invalidState(let problems):
            return "invalid dataplane state:\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
        case .kernel(let ns, let object, let error, let rolledBack):
            return "\(ns): \(object): \(error)" + (rolledBack ? " (the namespace was left as it was)" : "")
        case .namespace(let name, let error):
            return "namespace \(name): \(error)"
        }
    }
}
