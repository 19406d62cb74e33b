/// A node-local volume as dockerd shows it (`docker volume inspect`).
public struct VolumeResource: Codable, Sendable, Equatable {
    public var CreatedAt: String
    public var Driver: String
    public var Labels: [String: String]
    public var Mountpoint: String
    public var Name: String
    public var Options: [String: String]
    public var Scope: String
    public init(CreatedAt: String, Labels: [String: String], Mountpoint: String, Name: String, Options: [String: String]) {
        self.CreatedAt = CreatedAt
        Driver = "local"
        self.Labels = Labels
        self.Mountpoint = Mountpoint
        self.Name = Name
        self.Options = Options
        Scope = "local"
    }
}

/// `GET /volumes`.
public struct VolumeListResponse: Codable, Sendable, Equatable {
    public var Volumes: [VolumeResource]
    /// Always present, null when there is nothing to say (as dockerd).
    public var Warnings: [String]?
    public init(Volumes: [VolumeResource]) { self.Volumes = Volumes }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Volumes, forKey: .Volumes)
        try c.encode(Warnings, forKey: .Warnings)
    }
}

/// `POST /volumes/create`.
public struct VolumeCreateRequest: Codable, Sendable, Equatable {
    public var Name: String?
    public var Driver: String?
    public var DriverOpts: [String: String]?
    public var Labels: [String: String]?
    /// Cluster volumes (CSI); meshd has none, so one sent is refused by name.
    public var ClusterVolumeSpec: Present?

    /// A member whose content does not matter, only that it was sent.
    public struct Present: Codable, Sendable, Equatable {
        public init() {}
        public init(from decoder: Decoder) throws {}
        public func encode(to encoder: Encoder) throws {}
    }
}
