import Foundation

/// The `filters` query parameter: JSON `{"key":{"value":true,…}}`, or the legacy `{"key":["value"]}`.
/// Values of one key are alternatives; different keys must all match.
public struct FilterArgs: Sendable, Equatable {
    public private(set) var values: [String: [String]] = [:]

    public init(_ values: [String: [String]] = [:]) { self.values = values }

    /// Bounds: the text is already limited by the HTTP head size; at most 64 keys and 1024 values.
    public static func parse(_ text: String?, allowed: Set<String>) throws(EngineError) -> FilterArgs {
        guard let text, !text.isEmpty else { return FilterArgs() }
        // Codable, not JSONSerialization: `{"x":1}` must not pass for `{"x":true}`.
        let dict: [String: Values]
        do {
            dict = try JSONDecoder().decode([String: Values].self, from: Data(text.utf8))
        } catch {
            throw EngineError.invalidArgument("invalid filter: filters must be a JSON object of the form {\"key\":{\"value\":true}}")
        }
        guard dict.count <= 64 else { throw EngineError.invalidArgument("invalid filter: too many keys") }
        var out: [String: [String]] = [:]
        var total = 0
        for (key, raw) in dict {
            guard allowed.contains(key) else { throw EngineError.invalidArgument("invalid filter '\(key)'") }
            total += raw.values.count
            guard total <= 1024 else { throw EngineError.invalidArgument("invalid filter: too many values") }
            out[key] = raw.values.sorted()
        }
        return FilterArgs(out)
    }

    /// One key's values: `{"v":true}` (false entries dropped) or the legacy `["v"]`.
    struct Values: Decodable {
        var values: [String]
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let m = try? c.decode([String: Bool].self) {
                values = m.filter(\.value).map(\.key)
            } else {
                values = try c.decode([String].self)
            }
        }
    }

    public func get(_ key: String) -> [String] { values[key] ?? [] }
    public func has(_ key: String) -> Bool { !(values[key] ?? []).isEmpty }

    /// True when `key` is absent or one of its values satisfies `test`.
    public func any(_ key: String, _ test: (String) -> Bool) -> Bool {
        guard let vs = values[key], !vs.isEmpty else { return true }
        return vs.contains(where: test)
    }

    /// Label filters: every value (`k` or `k=v`) must be matched by `labels`.
    public func labels(_ key: String, match labels: [String: String]?) -> Bool {
        guard let vs = values[key], !vs.isEmpty else { return true }
        let labels = labels ?? [:]
        return vs.allSatisfy { v in
            if let eq = v.firstIndex(of: "=") {
                return labels[String(v[..<eq])] == String(v[v.index(after: eq)...])
            }
            return labels[v] != nil
        }
    }

    /// The first value of a boolean key (`_up-to-date`, `dangling`): nil when absent.
    public func bool(_ key: String) throws(EngineError) -> Bool? {
        guard let v = values[key]?.first else { return nil }
        switch v.lowercased() {
        case "true", "1": return true
        case "false", "0": return false
        default: throw EngineError.invalidArgument("invalid value for filter '\(key)': \(v)")
        }
    }
}

/// `GET /services` filters: `id` and `name` are prefixes, `label` matches the service's labels.
public struct ServiceFilter: Sendable, Equatable {
    public static let keys: Set<String> = ["id", "name", "label", "mode"]
    public var args: FilterArgs
    public init(_ args: FilterArgs = FilterArgs()) { self.args = args }

    public func matches(_ s: Service) -> Bool {
        args.any("id") { s.ID.hasPrefix($0) }
            && args.any("name") { (s.Spec.Name ?? "").hasPrefix($0) }
            && args.labels("label", match: s.Spec.Labels)
            && args.any("mode") { $0 == (s.Spec.Mode ?? .replicated(1)).name }
    }
}

/// `GET /nodes` filters: `label` is the engine's labels, `node.label` the node's own (spec) labels.
public struct NodeFilter: Sendable, Equatable {
    public static let keys: Set<String> = ["id", "name", "label", "role", "membership", "node.label"]
    public var args: FilterArgs
    public init(_ args: FilterArgs = FilterArgs()) { self.args = args }

    public func matches(_ n: Node) -> Bool {
        args.any("id") { n.ID.hasPrefix($0) }
            && args.any("name") { (n.Spec.Name ?? "").hasPrefix($0) || n.Description.Hostname.hasPrefix($0) }
            && args.labels("label", match: n.Description.Engine.Labels)
            && args.labels("node.label", match: n.Spec.Labels)
            && args.any("role") { $0 == n.Spec.Role }
            // meshd accepts nodes when they join; there is no pending membership.
            && args.any("membership") { $0 == "accepted" }
    }
}

/// `GET /tasks` filters. `service` and `node` values are names or ID prefixes the backend resolves;
/// `label` matches the labels of the task's service; `_up-to-date` keeps tasks of the current spec.
public struct TaskFilter: Sendable, Equatable {
    public static let keys: Set<String> = ["id", "name", "label", "service", "node", "desired-state", "_up-to-date", "runtime"]
    public var args: FilterArgs
    public init(_ args: FilterArgs = FilterArgs()) { self.args = args }

    public var services: [String] { args.get("service") }
    public var nodes: [String] { args.get("node") }
    public var upToDate: Bool { (try? args.bool("_up-to-date")) == true }

    /// Everything except what needs the store: `serviceIDs`/`nodeIDs` are the resolved `service`/`node`
    /// values (nil when that filter is absent), `service` is the task's service, `isUpToDate` whether
    /// the task was made from the service's current spec.
    public func matches(_ t: SwarmTask, service: Service?, serviceIDs: Set<String>?, nodeIDs: Set<String>?, isUpToDate: Bool) -> Bool {
        let taskName = "\(service?.Spec.Name ?? t.ServiceID).\(t.Slot == 0 ? t.NodeID : String(t.Slot))"
        return args.any("id") { t.ID.hasPrefix($0) }
            && args.any("name") { taskName.hasPrefix($0) }
            && args.labels("label", match: service?.Spec.Labels)
            && (serviceIDs.map { $0.contains(t.ServiceID) } ?? true)
            && (nodeIDs.map { $0.contains(t.NodeID) } ?? true)
            && args.any("desired-state") { $0 == t.DesiredState }
            && (!upToDate || isUpToDate)
            && args.any("runtime") { $0 == "container" }
    }
}

/// `GET /networks` filters. `dangling` needs to know which networks are in use.
public struct NetworkFilter: Sendable, Equatable {
    public static let keys: Set<String> = ["dangling", "driver", "id", "label", "name", "scope", "type"]
    public var args: FilterArgs
    public init(_ args: FilterArgs = FilterArgs()) { self.args = args }

    public func matches(_ n: NetworkResource, inUse: Bool) -> Bool {
        let dangling = (try? args.bool("dangling")) ?? nil
        return args.any("driver") { $0 == n.Driver }
            && args.any("id") { n.Id.hasPrefix($0) }
            && args.labels("label", match: n.Labels)
            && args.any("name") { n.Name.contains($0) }
            && args.any("scope") { $0 == n.Scope }
            && args.any("type") { $0 == "custom" ? !n.Ingress : $0 == "builtin" ? n.Ingress : false }
            && (dangling.map { $0 == !inUse } ?? true)
    }
}
