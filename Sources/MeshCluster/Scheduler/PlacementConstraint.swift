import Foundation

/// One `--constraint` expression: `node.id|node.hostname|node.role|node.labels.<key>` `==`|`!=` value.
public struct PlacementConstraint: Sendable, Equatable, CustomStringConvertible {
    public enum Key: Sendable, Equatable {
        case nodeID, hostname, role
        case label(String)
    }
    public var key: Key
    public var equals: Bool
    public var value: String

    public init(key: Key, equals: Bool, value: String) {
        self.key = key
        self.equals = equals
        self.value = value
    }

    public static func parse(_ expression: String) throws(ClusterError) -> PlacementConstraint {
        let op: String
        let equals: Bool
        if expression.contains("!=") {
            op = "!="
            equals = false
        } else if expression.contains("==") {
            op = "=="
            equals = true
        } else {
            throw .invalidArgument("constraint expected one operator from ==, !=: \(expression)")
        }
        let parts = expression.components(separatedBy: op)
        guard parts.count == 2 else { throw .invalidArgument("constraint has more than one operator: \(expression)") }
        let lhs = parts[0].trimmingCharacters(in: .whitespaces)
        let value = parts[1].trimmingCharacters(in: .whitespaces)
        guard !value.isEmpty else { throw .invalidArgument("constraint has no value: \(expression)") }
        let lower = lhs.lowercased()
        let key: Key
        switch lower {
        case "node.id": key = .nodeID
        case "node.hostname": key = .hostname
        case "node.role":
            key = .role
            guard NodeRole(rawValue: value.lowercased()) != nil else {
                throw .invalidArgument("constraint node.role must be manager or worker: \(expression)")
            }
        default:
            guard lower.hasPrefix("node.labels."), lhs.count > "node.labels.".count else {
                throw .invalidArgument(
                    "constraint key \"\(lhs)\" is not supported (use node.id, node.hostname, node.role or node.labels.<key>): \(expression)"
                )
            }
            key = .label(String(lhs.dropFirst("node.labels.".count)))
        }
        return PlacementConstraint(key: key, equals: equals, value: value)
    }

    public static func parseAll(_ expressions: [String]) throws(ClusterError) -> [PlacementConstraint] {
        var out: [PlacementConstraint] = []
        for e in expressions { out.append(try parse(e)) }
        return out
    }

    /// Node IDs, hostnames and roles compare case-insensitively (as swarmkit does); label values exactly.
    public func matches(_ node: ClusterNode) -> Bool {
        let actual: String?
        var caseSensitive = false
        switch key {
        case .nodeID: actual = node.id
        case .hostname: actual = node.hostname
        case .role: actual = node.role.rawValue
        case .label(let k):
            actual = node.labels[k]
            caseSensitive = true
        }
        // A missing label never equals, and always differs.
        guard let actual else { return !equals }
        let same = caseSensitive ? actual == value : actual.lowercased() == value.lowercased()
        return same == equals
    }

    public var description: String {
        let k: String
        switch key {
        case .nodeID: k = "node.id"
        case .hostname: k = "node.hostname"
        case .role: k = "node.role"
        case .label(let l): k = "node.labels.\(l)"
        }
        return "\(k)\(equals ? "==" : "!=")\(value)"
    }
}
