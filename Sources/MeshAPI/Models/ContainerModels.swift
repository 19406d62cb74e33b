import Foundation

/// One element of `GET /containers/json` (swagger `ContainerSummary`), the fields the CLI reads.
public struct ContainerSummary: Codable, Sendable, Equatable {
    public struct HostConfig: Codable, Sendable, Equatable {
        public var NetworkMode: String
        public init(NetworkMode: String) { self.NetworkMode = NetworkMode }
    }
    public struct NetworkSettings: Codable, Sendable, Equatable {
        public var Networks: [String: EndpointSettings]
        public init(Networks: [String: EndpointSettings] = [:]) { self.Networks = Networks }
    }
    public var Id: String
    public var Names: [String]
    public var Image: String
    public var ImageID: String
    public var Command: String
    /// Unix seconds.
    public var Created: Int64
    public var Ports: [Port]
    public var Labels: [String: String]
    /// `running`, `exited`.
    public var State: String
    /// `Up 3 minutes`, `Exited (3) 2 seconds ago`.
    public var Status: String
    public var HostConfig: HostConfig
    public var NetworkSettings: NetworkSettings
    public var Mounts: [MountPoint]

    public init(
        Id: String, Names: [String], Image: String, ImageID: String = "", Command: String, Created: Int64, Ports: [Port] = [],
        Labels: [String: String], State: String, Status: String, HostConfig: HostConfig = .init(NetworkMode: "default"),
        NetworkSettings: NetworkSettings = .init(), Mounts: [MountPoint] = []
    ) {
        self.Id = Id
        self.Names = Names
        self.Image = Image
        self.ImageID = ImageID
        self.Command = Command
        self.Created = Created
        self.Ports = Ports
        self.Labels = Labels
        self.State = State
        self.Status = Status
        self.HostConfig = HostConfig
        self.NetworkSettings = NetworkSettings
        self.Mounts = Mounts
    }

    public struct Port: Codable, Sendable, Equatable {
        public var PrivatePort: UInt16
        public var PublicPort: UInt16?
        public var `Type`: String
    }
}

/// An endpoint of a container on a network, as far as meshd knows it.
public struct EndpointSettings: Codable, Sendable, Equatable {
    public var NetworkID: String
    public var IPAddress: String
    public var IPPrefixLen: Int
    public var MacAddress: String
    public init(NetworkID: String, IPAddress: String, IPPrefixLen: Int, MacAddress: String) {
        self.NetworkID = NetworkID
        self.IPAddress = IPAddress
        self.IPPrefixLen = IPPrefixLen
        self.MacAddress = MacAddress
    }
}

/// A container's mount (swagger `MountPoint`).
public struct MountPoint: Codable, Sendable, Equatable {
    /// `volume`, `bind` or `tmpfs`.
    public var `Type`: String
    /// A volume's name; empty for the others.
    public var Name: String
    public var Source: String
    public var Destination: String
    /// `local` for a volume.
    public var Driver: String
    public var Mode: String
    public var RW: Bool
    public var Propagation: String
    public init(Type: String, Name: String, Source: String, Destination: String, Driver: String, RW: Bool) {
        self.Type = Type
        self.Name = Name
        self.Source = Source
        self.Destination = Destination
        self.Driver = Driver
        self.Mode = ""
        self.RW = RW
        self.Propagation = Type == "bind" ? "rprivate" : ""
    }
}

/// `GET /containers/{id}/json` (swagger `ContainerInspectResponse`): what the runtime knows.
public struct ContainerInspect: Codable, Sendable, Equatable {
    public struct State: Codable, Sendable, Equatable {
        public var Status: String
        public var Running: Bool
        public var Paused = false
        public var Restarting = false
        public var OOMKilled = false
        public var Dead = false
        public var Pid: Int32
        public var ExitCode: Int32
        public var Error = ""
        public var StartedAt: String
        public var FinishedAt: String
        /// Only for a container with a health check, as dockerd shows it.
        public var Health: HealthInfo?
        public init(Status: String, Running: Bool, Pid: Int32, ExitCode: Int32, StartedAt: String, FinishedAt: String) {
            self.Status = Status
            self.Running = Running
            self.Pid = Pid
            self.ExitCode = ExitCode
            self.StartedAt = StartedAt
            self.FinishedAt = FinishedAt
        }
    }
    /// swagger `Health`: `starting`, `healthy` or `unhealthy`, the failures in a row, the last five probes.
    public struct HealthInfo: Codable, Sendable, Equatable {
        public struct Result: Codable, Sendable, Equatable {
            public var Start: String
            public var End: String
            public var ExitCode: Int32
            public var Output: String
            public init(Start: String, End: String, ExitCode: Int32, Output: String) {
                self.Start = Start
                self.End = End
                self.ExitCode = ExitCode
                self.Output = Output
            }
        }
        public var Status: String
        public var FailingStreak: Int
        public var Log: [Result]
        public init(Status: String, FailingStreak: Int, Log: [Result]) {
            self.Status = Status
            self.FailingStreak = FailingStreak
            self.Log = Log
        }
    }
    public struct Config: Codable, Sendable, Equatable {
        public var Hostname: String
        public var User: String
        public var AttachStdin = false
        public var AttachStdout = false
        public var AttachStderr = false
        public var Tty = false
        public var OpenStdin = false
        public var StdinOnce = false
        public var Env: [String]
        public var Cmd: [String]
        public var Image: String
        public var WorkingDir: String
        public var Entrypoint: [String]
        public var Labels: [String: String]
        public var StopSignal: String?
        public init(
            Hostname: String, User: String, Env: [String], Cmd: [String], Image: String, WorkingDir: String, Entrypoint: [String],
            Labels: [String: String], StopSignal: String?
        ) {
            self.Hostname = Hostname
            self.User = User
            self.Env = Env
            self.Cmd = Cmd
            self.Image = Image
            self.WorkingDir = WorkingDir
            self.Entrypoint = Entrypoint
            self.Labels = Labels
            self.StopSignal = StopSignal
        }
    }
    public struct HostConfig: Codable, Sendable, Equatable {
        public var NetworkMode: String
        public var Runtime: String
        public init(NetworkMode: String, Runtime: String) {
            self.NetworkMode = NetworkMode
            self.Runtime = Runtime
        }
    }
    public struct NetworkSettings: Codable, Sendable, Equatable {
        /// The task's network namespace.
        public var SandboxKey: String
        public var Networks: [String: EndpointSettings]
        public init(SandboxKey: String, Networks: [String: EndpointSettings] = [:]) {
            self.SandboxKey = SandboxKey
            self.Networks = Networks
        }
    }

    public var Id: String
    public var Created: String
    public var Path: String
    public var Args: [String]
    public var State: State
    public var Image: String
    public var Name: String
    public var RestartCount = 0
    public var Driver = "meshd"
    public var Platform = "linux"
    public var Config: Config
    public var HostConfig: HostConfig
    public var NetworkSettings: NetworkSettings
    public var Mounts: [MountPoint] = []
    /// Ids of this container's execs that are known.
    public var ExecIDs: [String]?

    public init(
        Id: String, Created: String, Path: String, Args: [String], State: State, Image: String, Name: String, Config: Config,
        HostConfig: HostConfig, NetworkSettings: NetworkSettings, Mounts: [MountPoint] = [], ExecIDs: [String]?
    ) {
        self.Mounts = Mounts
        self.Id = Id
        self.Created = Created
        self.Path = Path
        self.Args = Args
        self.State = State
        self.Image = Image
        self.Name = Name
        self.Config = Config
        self.HostConfig = HostConfig
        self.NetworkSettings = NetworkSettings
        self.ExecIDs = ExecIDs
    }
}

/// The body of `POST /containers/{id}/wait`: `Error` is null unless the wait failed.
public struct ContainerWaitResponse: Codable, Sendable, Equatable {
    public struct WaitError: Codable, Sendable, Equatable { public var Message: String }
    public var StatusCode: Int64
    public var Error: WaitError?
    public init(StatusCode: Int64, Error: WaitError? = nil) {
        self.StatusCode = StatusCode
        self.Error = Error
    }
    enum CodingKeys: String, CodingKey { case StatusCode, Error }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(StatusCode, forKey: .StatusCode)
        try c.encode(Error, forKey: .Error)  // null, as dockerd writes it
    }
}

/// `POST /containers/{id}/exec` (swagger `ExecConfig`).
public struct ExecCreateRequest: Codable, Sendable, Equatable {
    public var User: String?
    public var Privileged: Bool?
    public var Tty: Bool?
    /// `[rows, columns]`.
    public var ConsoleSize: [UInt16]?
    public var AttachStdin: Bool?
    public var AttachStdout: Bool?
    public var AttachStderr: Bool?
    public var Detach: Bool?
    public var DetachKeys: String?
    public var Env: [String]?
    public var WorkingDir: String?
    public var Cmd: [String]?
    public init(
        Cmd: [String], User: String? = nil, Tty: Bool? = nil, AttachStdin: Bool? = nil, AttachStdout: Bool? = true,
        AttachStderr: Bool? = true, Env: [String]? = nil, WorkingDir: String? = nil, ConsoleSize: [UInt16]? = nil,
        Privileged: Bool? = nil
    ) {
        self.Cmd = Cmd
        self.User = User
        self.Tty = Tty
        self.AttachStdin = AttachStdin
        self.AttachStdout = AttachStdout
        self.AttachStderr = AttachStderr
        self.Env = Env
        self.WorkingDir = WorkingDir
        self.ConsoleSize = ConsoleSize
        self.Privileged = Privileged
    }
}

/// `POST /exec/{id}/start`.
public struct ExecStartRequest: Codable, Sendable, Equatable {
    public var Detach: Bool?
    public var Tty: Bool?
    public var ConsoleSize: [UInt16]?
    public init(Detach: Bool? = nil, Tty: Bool? = nil, ConsoleSize: [UInt16]? = nil) {
        self.Detach = Detach
        self.Tty = Tty
        self.ConsoleSize = ConsoleSize
    }
}

/// `GET /exec/{id}/json` (swagger `ExecInspectResponse`). `ExitCode` is null until it ended.
public struct ExecInspect: Codable, Sendable, Equatable {
    public struct ProcessConfig: Codable, Sendable, Equatable {
        public var privileged: Bool
        public var user: String
        public var tty: Bool
        public var entrypoint: String
        public var arguments: [String]
        public init(privileged: Bool, user: String, tty: Bool, entrypoint: String, arguments: [String]) {
            self.privileged = privileged
            self.user = user
            self.tty = tty
            self.entrypoint = entrypoint
            self.arguments = arguments
        }
    }
    public var ID: String
    public var Running: Bool
    public var ExitCode: Int32?
    public var ProcessConfig: ProcessConfig
    public var OpenStdin: Bool
    public var OpenStderr: Bool
    public var OpenStdout: Bool
    public var CanRemove: Bool
    public var ContainerID: String
    public var DetachKeys: String
    public var Pid: Int32
    public init(
        ID: String, Running: Bool, ExitCode: Int32?, ProcessConfig: ProcessConfig, OpenStdin: Bool, OpenStderr: Bool,
        OpenStdout: Bool, ContainerID: String, Pid: Int32
    ) {
        self.ID = ID
        self.Running = Running
        self.ExitCode = ExitCode
        self.ProcessConfig = ProcessConfig
        self.OpenStdin = OpenStdin
        self.OpenStderr = OpenStderr
        self.OpenStdout = OpenStdout
        self.CanRemove = false
        self.ContainerID = ContainerID
        self.DetachKeys = ""
        self.Pid = Pid
    }
    enum CodingKeys: String, CodingKey {
        case ID, Running, ExitCode, ProcessConfig, OpenStdin, OpenStderr, OpenStdout, CanRemove, ContainerID, DetachKeys, Pid
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ID, forKey: .ID)
        try c.encode(Running, forKey: .Running)
        try c.encode(ExitCode, forKey: .ExitCode)  // null while it runs, as dockerd's
        try c.encode(self.ProcessConfig, forKey: .ProcessConfig)
        try c.encode(OpenStdin, forKey: .OpenStdin)
        try c.encode(OpenStderr, forKey: .OpenStderr)
        try c.encode(OpenStdout, forKey: .OpenStdout)
        try c.encode(CanRemove, forKey: .CanRemove)
        try c.encode(ContainerID, forKey: .ContainerID)
        try c.encode(DetachKeys, forKey: .DetachKeys)
        try c.encode(Pid, forKey: .Pid)
    }
}

/// `docker info`'s container counts.
public struct ContainerCounts: Sendable, Equatable {
    public var running: Int
    public var stopped: Int
    public var total: Int { running + stopped }
    public init(running: Int = 0, stopped: Int = 0) {
        self.running = running
        self.stopped = stopped
    }
}

/// `GET /containers/json` options.
public struct ContainerListOptions: Sendable, Equatable {
    /// Ended containers too (`all=1`).
    public var all = false
    /// At most this many, newest first; also implies `all` (dockerd's rule).
    public var limit: Int?
    public var filter = ContainerFilter()
    public init(all: Bool = false, limit: Int? = nil, filter: ContainerFilter = ContainerFilter()) {
        self.all = all
        self.limit = limit
        self.filter = filter
    }
}

/// The `filters` of `GET /containers/json` meshd serves. dockerd knows more keys (ancestor,
/// network, health…); those are refused by name rather than ignored, so a script never gets an
/// unfiltered list it took for a filtered one.
public struct ContainerFilter: Sendable, Equatable {
    public static let keys: Set<String> = ["id", "name", "label", "status", "health"]
    public static let statuses: Set<String> = ["created", "restarting", "running", "removing", "paused", "exited", "dead"]
    /// A container's health as `health=` names it: a check's state, or `none` without a check.
    public static let healths: Set<String> = ["starting", "healthy", "unhealthy", "none"]
    public var args: FilterArgs
    public init(_ args: FilterArgs = FilterArgs()) { self.args = args }

    /// Parses `filters` and checks `status` values as dockerd does.
    public static func parse(_ text: String?) throws(EngineError) -> ContainerFilter {
        let args = try FilterArgs.parse(text, allowed: keys)
        for s in args.get("status") where !statuses.contains(s) {
            throw .invalidArgument("invalid filter 'status=\(s)'")
        }
        for h in args.get("health") where !healths.contains(h) {
            throw .invalidArgument("Unrecognised filter value for health: \(h)")
        }
        return ContainerFilter(args)
    }

    /// `id`: a prefix of the id; `name`: a part of the name (dockerd matches a pattern); `label`:
    /// `k` or `k=v`; `status`: the state; `health`: `health` (one of `healths`).
    public func matches(_ c: ContainerSummary, health: String = "none") -> Bool {
        let name = c.Names.first.map { String($0.drop(while: { $0 == "/" })) } ?? ""
        return args.any("id") { c.Id.hasPrefix($0) }
            && args.any("name") { name.contains($0.hasPrefix("/") ? String($0.dropFirst()) : $0) }
            && args.labels("label", match: c.Labels)
            && args.any("status") { $0 == c.State }
            && args.any("health") { $0 == health }
    }

    /// A status filter asks for ended containers too, as dockerd's does.
    public var includesEnded: Bool { args.get("status").contains { $0 != "running" } }
}

/// One chunk of a container's or exec's output.
public struct OutputChunk: Sendable, Equatable {
    public enum Stream: UInt8, Sendable { case stdin = 0, stdout = 1, stderr = 2 }
    public var stream: Stream
    public var bytes: [UInt8]
    public init(_ stream: Stream, _ bytes: [UInt8]) {
        self.stream = stream
        self.bytes = bytes
    }
}

/// A started exec the client stays attached to: its output until the process ended, and its
/// input. `closeInput` is the client's half-close (stdin EOF).
public struct ExecAttachment: Sendable {
    public var tty: Bool
    public var output: AsyncStream<OutputChunk>
    public var send: @Sendable ([UInt8]) async -> Void
    public var closeInput: @Sendable () async -> Void
    /// The client stopped reading (it went away, or the output ended): the output may be dropped.
    public var detach: @Sendable () -> Void
    public init(
        tty: Bool, output: AsyncStream<OutputChunk>, send: @escaping @Sendable ([UInt8]) async -> Void,
        closeInput: @escaping @Sendable () async -> Void, detach: @escaping @Sendable () -> Void = {}
    ) {
        self.tty = tty
        self.output = output
        self.send = send
        self.closeInput = closeInput
        self.detach = detach
    }
}
