import Foundation

/// `SecretSpec` and `ConfigSpec` share their shape: `Data` is the payload base64-encoded (Go's
/// `[]byte` in JSON). A secret's `Data` never comes back from the API; a config's does.
public struct SwarmDataSpec: Codable, Sendable, Equatable {
    public var Name: String?
    public var Labels: [String: String]?
    public var Data: String?
    /// Secrets only: an external secret store plugin (refused by meshd when given).
    public var Driver: Driver?
    public var Templating: Driver?

    public init(Name: String? = nil, Labels: [String: String]? = nil, Data: String? = nil, Driver: Driver? = nil, Templating: Driver? = nil)
    {
        self.Name = Name
        self.Labels = Labels
        self.Data = Data
        self.Driver = Driver
        self.Templating = Templating
    }
}

/// `GET /secrets/{id}` and `GET /configs/{id}` (and the lists): swarm objects with a spec.
public struct SwarmDataObject: Codable, Sendable, Equatable {
    public var ID: String
    public var Version: ObjectVersion
    public var CreatedAt: Date
    public var UpdatedAt: Date
    public var Spec: SwarmDataSpec

    public init(ID: String, Version: ObjectVersion, CreatedAt: Date, UpdatedAt: Date, Spec: SwarmDataSpec) {
        self.ID = ID
        self.Version = Version
        self.CreatedAt = CreatedAt
        self.UpdatedAt = UpdatedAt
        self.Spec = Spec
    }
}

/// `POST /secrets/create`, `POST /configs/create`: 201 with the new object's ID.
public struct IDResponse: Codable, Sendable, Equatable {
    public var ID: String
    public init(ID: String) { self.ID = ID }
}

/// Which kind a `/secrets` or `/configs` request is about.
public enum SwarmDataKind: String, Sendable, Equatable {
    case secret, config
}

/// moby's secret and config list filters: `id` (prefix), `name` (prefix), `names` (exact), `label`.
public struct SwarmDataFilter: Sendable, Equatable {
    public static let keys: Set<String> = ["id", "label", "name", "names"]
    public var args: FilterArgs
    public init(_ args: FilterArgs = FilterArgs()) { self.args = args }

    public func matches(_ o: SwarmDataObject) -> Bool {
        let name = o.Spec.Name ?? ""
        return args.any("id") { o.ID.hasPrefix($0) }
            && args.any("name") { name.hasPrefix($0) }
            && args.any("names") { name == $0 }
            && args.labels("label", match: o.Spec.Labels)
    }
}
