import Foundation

/// The body of `POST /nodes/{id}/update?version=N`, and `Node.Spec`.
public struct NodeSpec: Codable, Sendable, Equatable {
    public var Name: String?
    public var Labels: [String: String]?
    public var Role: String
    public var Availability: String

    public init(Name: String? = nil, Labels: [String: String]? = nil, Role: String, Availability: String) {
        self.Name = Name
        self.Labels = Labels
        self.Role = Role
        self.Availability = Availability
    }

    public static let roles: Set<String> = ["worker", "manager"]
    public static let availabilities: Set<String> = ["active", "pause", "drain"]
}

public struct Node: Codable, Sendable, Equatable {
    public var ID: String
    public var Version: ObjectVersion
    public var CreatedAt: Date
    public var UpdatedAt: Date
    public var Spec: NodeSpec
    public var Description: Description
    public var Status: Status
    /// Absent for workers; the CLI tells managers by its presence.
    public var ManagerStatus: ManagerStatus?

    public struct Description: Codable, Sendable, Equatable {
        public var Hostname: String
        public var Platform: Platform
        public var Resources: Resources
        public var Engine: Engine
        public var TLSInfo: TLSInfo?
        public init(Hostname: String, Platform: Platform, Resources: Resources, Engine: Engine, TLSInfo: TLSInfo? = nil) {
            self.Hostname = Hostname
            self.Platform = Platform
            self.Resources = Resources
            self.Engine = Engine
            self.TLSInfo = TLSInfo
        }
    }
    public struct Platform: Codable, Sendable, Equatable {
        public var Architecture: String
        public var OS: String
        public init(Architecture: String, OS: String) {
            self.Architecture = Architecture
            self.OS = OS
        }
    }
    public struct Resources: Codable, Sendable, Equatable {
        public var NanoCPUs: Int64
        public var MemoryBytes: Int64
        public init(NanoCPUs: Int64, MemoryBytes: Int64) {
            self.NanoCPUs = NanoCPUs
            self.MemoryBytes = MemoryBytes
        }
    }
    public struct Engine: Codable, Sendable, Equatable {
        public var EngineVersion: String
        public var Labels: [String: String]?
        public init(EngineVersion: String, Labels: [String: String]? = nil) {
            self.EngineVersion = EngineVersion
            self.Labels = Labels
        }
    }
    public struct Status: Codable, Sendable, Equatable {
        /// unknown, down, ready, disconnected
        public var State: String
        public var Message: String?
        public var Addr: String
        public init(State: String, Message: String? = nil, Addr: String) {
            self.State = State
            self.Message = Message
            self.Addr = Addr
        }
    }
    public struct ManagerStatus: Codable, Sendable, Equatable {
        public var Leader: Bool?
        /// unknown, unreachable, reachable
        public var Reachability: String
        public var Addr: String
        public init(Leader: Bool? = nil, Reachability: String, Addr: String) {
            self.Leader = Leader
            self.Reachability = Reachability
            self.Addr = Addr
        }
    }

    public init(
        ID: String, Version: ObjectVersion, CreatedAt: Date, UpdatedAt: Date, Spec: NodeSpec, Description: Description,
        Status: Status, ManagerStatus: ManagerStatus? = nil
    ) {
        self.ID = ID
        self.Version = Version
        self.CreatedAt = CreatedAt
        self.UpdatedAt = UpdatedAt
        self.Spec = Spec
        self.Description = Description
        self.Status = Status
        self.ManagerStatus = ManagerStatus
    }
}
