import Foundation

/// `GET /events` filters, matched as moby's `daemon/events.Filter` matches them: all keys must match,
/// values of one key are alternatives.
///
/// - `type`, `scope`: exact. `event`: exact on the action (prefix for `health_status`, `exec_create`,
///   `exec_start`, as dockerd).
/// - `service`, `node`, `network`, `secret`, `config`, `container`, `volume`, `plugin`, `daemon`: the
///   value is a prefix of the actor's ID or of its `name` attribute. Like dockerd, these apply to every
///   event whatever its type (`--filter service=web` also keeps a network named `web-net`).
/// - `label`: every `k` / `k=v` must be among the actor's attributes. `image`: exact on the ID or
///   the `image` attribute (`name` for image events), with or without the tag.
///
/// Unlike dockerd 28, which ignores keys it does not know, an unknown key is refused by name (400
/// `invalid filter 'x'`, the message dockerd gives on every other endpoint): a typo must not
/// silently stream everything. For the same reason an unknown `type` or `scope` value is refused.
public struct EventFilter: Sendable, Equatable {
    public static let keys: Set<String> = [
        "config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope", "secret",
        "service", "type", "volume",
    ]
    /// moby's `events.Type` values.
    public static let types: Set<String> = [
        "builder", "config", "container", "daemon", "image", "network", "node", "plugin", "secret", "service", "volume",
    ]
    public static let scopes: Set<String> = ["local", "swarm"]
    /// Object types matched by ID or name prefix.
    static let named = ["daemon", "container", "plugin", "volume", "network", "service", "node", "secret", "config"]

    public var args: FilterArgs
    public init(_ args: FilterArgs = FilterArgs()) { self.args = args }

    /// The `filters` query value; 400 for bad JSON, unknown keys and unknown types or scopes.
    public static func parse(_ text: String?) throws(EngineError) -> EventFilter {
        let args = try FilterArgs.parse(text, allowed: keys)
        for (key, known) in [("type", types), ("scope", scopes)] {
            let unknown = args.get(key).filter { !known.contains($0) }
            if !unknown.isEmpty {
                // moby's invalidFilter with a value: `invalid filter 'type=[x y]'`.
                throw .invalidArgument("invalid filter '\(key)=[\(unknown.joined(separator: " "))]'")
            }
        }
        return EventFilter(args)
    }

    public func includes(_ e: EventMessage) -> Bool {
        matchAction(e.Action) && exact("type", e.Type) && exact("scope", e.scope)
            && Self.named.allSatisfy { fuzzy($0, e.Actor.ID) || fuzzy($0, e.Actor.Attributes["name"] ?? "") }
            && matchImage(e) && args.labels("label", match: e.Actor.Attributes)
    }

    /// Go's `Args.ExactMatch`: true when the key is absent.
    func exact(_ key: String, _ source: String) -> Bool {
        let vs = args.get(key)
        return vs.isEmpty || vs.contains(source)
    }

    /// Go's `Args.FuzzyMatch`: exact, or a value is a prefix of `source`.
    func fuzzy(_ key: String, _ source: String) -> Bool {
        exact(key, source) || args.get(key).contains { source.hasPrefix($0) }
    }

    func matchAction(_ action: String) -> Bool {
        let prefixed: Set<String> = ["health_status", "exec_create", "exec_start"]
        if args.get("event").contains(where: prefixed.contains) { return fuzzy("event", action) }
        return exact("event", action)
    }

    func matchImage(_ e: EventMessage) -> Bool {
        let name = e.Actor.Attributes[e.Type == "image" ? "name" : "image"] ?? ""
        return exact("image", e.Actor.ID) || exact("image", name) || exact("image", Self.stripTag(e.Actor.ID))
            || exact("image", Self.stripTag(name))
    }

    /// The familiar repository name without tag or digest (`docker.io/library/nginx:1.27` → `nginx`),
    /// which is what moby's `reference.FamiliarName` gives for well-formed references.
    static func stripTag(_ image: String) -> String {
        var s = Substring(image)
        if let at = s.firstIndex(of: "@") { s = s[..<at] }
        let slash = s.lastIndex(of: "/")
        if let colon = s.lastIndex(of: ":"), slash.map({ colon > $0 }) ?? true { s = s[..<colon] }
        for prefix in ["docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"] where s.hasPrefix(prefix) {
            return String(s.dropFirst(prefix.count))
        }
        return String(s)
    }
}
