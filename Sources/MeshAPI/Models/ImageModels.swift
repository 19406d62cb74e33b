/// `GET /images/json`: one entry per image (config digest), with every tag and digest it is known by.
public struct ImageSummary: Codable, Sendable, Equatable {
    public var Id: String
    public var ParentId: String
    public var RepoTags: [String]
    public var RepoDigests: [String]
    /// Unix seconds, from the image config's `created`; 0 when it has none.
    public var Created: Int64
    /// Bytes of its layers as pulled.
    public var Size: Int64
    /// -1: not computed, as dockerd answers without `shared-size=1`.
    public var SharedSize: Int64
    public var Labels: [String: String]
    /// -1: not computed, as dockerd answers without `containers` being asked.
    public var Containers: Int64
    public init(
        Id: String, RepoTags: [String], RepoDigests: [String], Created: Int64, Size: Int64, Labels: [String: String]
    ) {
        self.Id = Id
        ParentId = ""
        self.RepoTags = RepoTags
        self.RepoDigests = RepoDigests
        self.Created = Created
        self.Size = Size
        SharedSize = -1
        self.Labels = Labels
        Containers = -1
    }
}

/// `GET /images/{name}/json`: the part of dockerd's ImageInspect meshd knows from the image it pulled.
public struct ImageInspect: Codable, Sendable, Equatable {
    public struct Config: Codable, Sendable, Equatable {
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var Env: [String]
        public var WorkingDir: String
        public var User: String
        public var ExposedPorts: [String: [String: String]]?
        public var Volumes: [String: [String: String]]?
        public var StopSignal: String?
        public var Labels: [String: String]
        public init(
            Entrypoint: [String]?, Cmd: [String]?, Env: [String], WorkingDir: String, User: String, ExposedPorts: [String],
            Volumes: [String], StopSignal: String?, Labels: [String: String]
        ) {
            self.Entrypoint = Entrypoint
            self.Cmd = Cmd
            self.Env = Env
            self.WorkingDir = WorkingDir
            self.User = User
            self.ExposedPorts = ExposedPorts.isEmpty ? nil : Dictionary(uniqueKeysWithValues: ExposedPorts.map { ($0, [:]) })
            self.Volumes = Volumes.isEmpty ? nil : Dictionary(uniqueKeysWithValues: Volumes.map { ($0, [:]) })
            self.StopSignal = StopSignal
            self.Labels = Labels
        }
    }
    public struct RootFS: Codable, Sendable, Equatable {
        public var `Type`: String
        public var Layers: [String]
        public init(Layers: [String]) {
            self.Type = "layers"
            self.Layers = Layers
        }
    }
    public var Id: String
    public var RepoTags: [String]
    public var RepoDigests: [String]
    /// RFC 3339, from the image config; empty when it has none.
    public var Created: String
    public var Architecture: String
    public var Os: String
    public var Variant: String?
    public var Size: Int64
    public var Config: Config
    public var RootFS: RootFS
    public init(
        Id: String, RepoTags: [String], RepoDigests: [String], Created: String, Architecture: String, Os: String, Variant: String?,
        Size: Int64, Config: Config, RootFS: RootFS
    ) {
        self.Id = Id
        self.RepoTags = RepoTags
        self.RepoDigests = RepoDigests
        self.Created = Created
        self.Architecture = Architecture
        self.Os = Os
        self.Variant = Variant
        self.Size = Size
        self.Config = Config
        self.RootFS = RootFS
    }
}

/// What a finished `POST /images/create` reports: the lines `docker pull` prints.
public struct ImagePullResult: Sendable, Equatable {
    /// `127.0.0.1:5000/meshd/busybox:1.35`, or the familiar `redis:7` for docker.io.
    public var reference: String
    /// `1.35`
    public var tag: String
    /// `meshd/busybox`
    public var repository: String
    public var digest: String
    /// False: the store already had this image's manifest (`Image is up to date`).
    public var downloaded: Bool
    public init(reference: String, tag: String, repository: String, digest: String, downloaded: Bool) {
        self.reference = reference
        self.tag = tag
        self.repository = repository
        self.digest = digest
        self.downloaded = downloaded
    }
}
