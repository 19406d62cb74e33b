import Foundation

/// `Spec` of `GET /swarm` and the body of `POST /swarm/update`.
public struct SwarmSpec: Codable, Sendable, Equatable {
    public var Name: String?
    public var Labels: [String: String]?
    public var Orchestration: Orchestration?
    public var Raft: Raft?
    public var Dispatcher: Dispatcher?
    public var CAConfig: CAConfig?
    public var TaskDefaults: TaskDefaults?
    public var EncryptionConfig: EncryptionConfig?

    public struct Orchestration: Codable, Sendable, Equatable {
        public var TaskHistoryRetentionLimit: Int64?
        public init(TaskHistoryRetentionLimit: Int64? = nil) { self.TaskHistoryRetentionLimit = TaskHistoryRetentionLimit }
    }
    public struct Raft: Codable, Sendable, Equatable {
        public var SnapshotInterval: UInt64?
        public var KeepOldSnapshots: UInt64?
        public var LogEntriesForSlowFollowers: UInt64?
        public var ElectionTick: Int?
        public var HeartbeatTick: Int?
        public init(
            SnapshotInterval: UInt64? = nil, KeepOldSnapshots: UInt64? = nil, LogEntriesForSlowFollowers: UInt64? = nil,
            ElectionTick: Int? = nil, HeartbeatTick: Int? = nil
        ) {
            self.SnapshotInterval = SnapshotInterval
            self.KeepOldSnapshots = KeepOldSnapshots
            self.LogEntriesForSlowFollowers = LogEntriesForSlowFollowers
            self.ElectionTick = ElectionTick
            self.HeartbeatTick = HeartbeatTick
        }
    }
    public struct Dispatcher: Codable, Sendable, Equatable {
        public var HeartbeatPeriod: Nanoseconds?
        public init(HeartbeatPeriod: Nanoseconds? = nil) { self.HeartbeatPeriod = HeartbeatPeriod }
    }
    public struct CAConfig: Codable, Sendable, Equatable {
        public var NodeCertExpiry: Nanoseconds?
        public var SigningCACert: String?
        public var SigningCAKey: String?
        public var ForceRotate: UInt64?
        /// Refused when not empty: meshd's managers sign with their own CA only.
        public var ExternalCAs: [PresentValue]?
        public init(NodeCertExpiry: Nanoseconds? = nil, ForceRotate: UInt64? = nil) {
            self.NodeCertExpiry = NodeCertExpiry
            self.ForceRotate = ForceRotate
        }
    }
    public struct TaskDefaults: Codable, Sendable, Equatable {
        public var LogDriver: Driver?
        public init(LogDriver: Driver? = nil) { self.LogDriver = LogDriver }
    }
    public struct EncryptionConfig: Codable, Sendable, Equatable {
        public var AutoLockManagers: Bool
        public init(AutoLockManagers: Bool = false) { self.AutoLockManagers = AutoLockManagers }
    }

    public init(
        Name: String? = "default", Labels: [String: String]? = nil, Orchestration: Orchestration? = nil, Raft: Raft? = nil,
        Dispatcher: Dispatcher? = nil, CAConfig: CAConfig? = nil, TaskDefaults: TaskDefaults? = nil,
        EncryptionConfig: EncryptionConfig? = nil
    ) {
        self.Name = Name
        self.Labels = Labels
        self.Orchestration = Orchestration
        self.Raft = Raft
        self.Dispatcher = Dispatcher
        self.CAConfig = CAConfig
        self.TaskDefaults = TaskDefaults
        self.EncryptionConfig = EncryptionConfig
    }
}

/// A log or network driver reference: `{Name, Options}`.
public struct Driver: Codable, Sendable, Equatable {
    public var Name: String
    public var Options: [String: String]?
    public init(Name: String, Options: [String: String]? = nil) {
        self.Name = Name
        self.Options = Options
    }
}

/// Certificates of the cluster. The CLI decodes the two issuer fields as base64 (Go `[]byte`):
/// anything else makes `swarm init`, `node ls` and `join-token` fail.
public struct TLSInfo: Codable, Sendable, Equatable {
    public var TrustRoot: String?
    public var CertIssuerSubject: String?
    public var CertIssuerPublicKey: String?
    public init(TrustRoot: String? = nil, CertIssuerSubject: String? = nil, CertIssuerPublicKey: String? = nil) {
        self.TrustRoot = TrustRoot
        self.CertIssuerSubject = CertIssuerSubject
        self.CertIssuerPublicKey = CertIssuerPublicKey
    }
}

public struct JoinTokens: Codable, Sendable, Equatable {
    public var Worker: String
    public var Manager: String
    public init(Worker: String, Manager: String) {
        self.Worker = Worker
        self.Manager = Manager
    }
}

/// `Info.Swarm.Cluster`: the swarm without its join tokens.
public struct ClusterInfo: Codable, Sendable, Equatable {
    public var ID: String
    public var Version: ObjectVersion
    public var CreatedAt: Date
    public var UpdatedAt: Date
    public var Spec: SwarmSpec
    public var TLSInfo: TLSInfo
    public var RootRotationInProgress: Bool
    public var DefaultAddrPool: [String]
    public var SubnetSize: UInt32
    public var DataPathPort: UInt32

    public init(
        ID: String, Version: ObjectVersion, CreatedAt: Date, UpdatedAt: Date, Spec: SwarmSpec, TLSInfo: TLSInfo,
        RootRotationInProgress: Bool = false, DefaultAddrPool: [String], SubnetSize: UInt32, DataPathPort: UInt32
    ) {
        self.ID = ID
        self.Version = Version
        self.CreatedAt = CreatedAt
        self.UpdatedAt = UpdatedAt
        self.Spec = Spec
        self.TLSInfo = TLSInfo
        self.RootRotationInProgress = RootRotationInProgress
        self.DefaultAddrPool = DefaultAddrPool
        self.SubnetSize = SubnetSize
        self.DataPathPort = DataPathPort
    }
}

/// `GET /swarm`: ClusterInfo with the join tokens (Go embeds one in the other, so the keys are flat).
public struct Swarm: Codable, Sendable, Equatable {
    public var cluster: ClusterInfo
    public var JoinTokens: JoinTokens

    public init(cluster: ClusterInfo, JoinTokens: JoinTokens) {
        self.cluster = cluster
        self.JoinTokens = JoinTokens
    }

    enum TokenKey: String, CodingKey { case JoinTokens }

    public init(from decoder: Decoder) throws {
        cluster = try ClusterInfo(from: decoder)
        JoinTokens = try decoder.container(keyedBy: TokenKey.self).decode(MeshAPI.JoinTokens.self, forKey: .JoinTokens)
    }

    public func encode(to encoder: Encoder) throws {
        try cluster.encode(to: encoder)
        var c = encoder.container(keyedBy: TokenKey.self)
        try c.encode(JoinTokens, forKey: .JoinTokens)
    }
}

/// `POST /swarm/init`.
public struct SwarmInitRequest: Codable, Sendable, Equatable {
    public var ListenAddr: String?
    public var AdvertiseAddr: String?
    public var DataPathAddr: String?
    public var DataPathPort: UInt32?
    public var ForceNewCluster: Bool?
    public var Spec: SwarmSpec?
    public var AutoLockManagers: Bool?
    public var Availability: String?
    public var DefaultAddrPool: [String]?
    public var SubnetSize: UInt32?

    public init(
        ListenAddr: String? = "0.0.0.0:2377", AdvertiseAddr: String? = nil, DataPathAddr: String? = nil, DataPathPort: UInt32? = nil,
        ForceNewCluster: Bool? = nil, Spec: SwarmSpec? = nil, AutoLockManagers: Bool? = nil, Availability: String? = nil,
        DefaultAddrPool: [String]? = nil, SubnetSize: UInt32? = nil
    ) {
        self.ListenAddr = ListenAddr
        self.AdvertiseAddr = AdvertiseAddr
        self.DataPathAddr = DataPathAddr
        self.DataPathPort = DataPathPort
        self.ForceNewCluster = ForceNewCluster
        self.Spec = Spec
        self.AutoLockManagers = AutoLockManagers
        self.Availability = Availability
        self.DefaultAddrPool = DefaultAddrPool
        self.SubnetSize = SubnetSize
    }
}

/// `POST /swarm/join`.
public struct SwarmJoinRequest: Codable, Sendable, Equatable {
    public var ListenAddr: String?
    public var AdvertiseAddr: String?
    public var DataPathAddr: String?
    public var RemoteAddrs: [String]
    public var JoinToken: String
    public var Availability: String?

    public init(
        ListenAddr: String? = "0.0.0.0:2377", AdvertiseAddr: String? = nil, DataPathAddr: String? = nil, RemoteAddrs: [String],
        JoinToken: String, Availability: String? = nil
    ) {
        self.ListenAddr = ListenAddr
        self.AdvertiseAddr = AdvertiseAddr
        self.DataPathAddr = DataPathAddr
        self.RemoteAddrs = RemoteAddrs
        self.JoinToken = JoinToken
        self.Availability = Availability
    }
}

/// What `POST /swarm/update` should rotate besides applying the spec.
public struct SwarmRotation: Sendable, Equatable {
    public var workerToken = false
    public var managerToken = false
    public var managerUnlockKey = false
    public init(workerToken: Bool = false, managerToken: Bool = false, managerUnlockKey: Bool = false) {
        self.workerToken = workerToken
        self.managerToken = managerToken
        self.managerUnlockKey = managerUnlockKey
    }
}

/// `POST /swarm/unlock`'s body.
public struct SwarmUnlockRequest: Codable, Sendable, Equatable {
    public var UnlockKey: String
    public init(UnlockKey: String) { self.UnlockKey = UnlockKey }
}

public struct UnlockKeyResponse: Codable, Sendable, Equatable {
    public var UnlockKey: String
    public init(UnlockKey: String) { self.UnlockKey = UnlockKey }
}

/// `Info.Swarm`: this node's view of its swarm membership.
public struct SwarmInfo: Codable, Sendable, Equatable {
    public var NodeID: String
    public var NodeAddr: String
    public var LocalNodeState: LocalNodeState
    public var ControlAvailable: Bool
    public var Error: String
    public var RemoteManagers: [Peer]?
    public var Nodes: Int?
    public var Managers: Int?
    public var Cluster: ClusterInfo?

    public struct Peer: Codable, Sendable, Equatable {
        public var NodeID: String
        public var Addr: String
        public init(NodeID: String, Addr: String) {
            self.NodeID = NodeID
            self.Addr = Addr
        }
    }

    public init(
        NodeID: String = "", NodeAddr: String = "", LocalNodeState: LocalNodeState = .inactive, ControlAvailable: Bool = false,
        Error: String = "", RemoteManagers: [Peer]? = nil, Nodes: Int? = nil, Managers: Int? = nil, Cluster: ClusterInfo? = nil
    ) {
        self.NodeID = NodeID
        self.NodeAddr = NodeAddr
        self.LocalNodeState = LocalNodeState
        self.ControlAvailable = ControlAvailable
        self.Error = Error
        self.RemoteManagers = RemoteManagers
        self.Nodes = Nodes
        self.Managers = Managers
        self.Cluster = Cluster
    }

    /// The `Swarm` header of `/_ping`.
    public var pingHeader: String {
        switch LocalNodeState {
        case .active: ControlAvailable ? "active/manager" : "active/worker"
        default: LocalNodeState.rawValue
        }
    }
}

public enum LocalNodeState: String, Codable, Sendable, Equatable {
    case inactive, pending, active, error, locked
}
