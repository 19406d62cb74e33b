import Foundation

/// `GET /info`: the host fields `docker info` prints, plus the Swarm section.
public struct SystemInfo: Codable, Sendable, Equatable {
    public var ID: String
    public var Containers: Int
    public var ContainersRunning: Int
    public var ContainersPaused: Int
    public var ContainersStopped: Int
    public var Images: Int
    public var Driver: String
    public var NCPU: Int
    public var MemTotal: Int64
    public var Name: String
    public var ServerVersion: String
    public var KernelVersion: String
    public var OperatingSystem: String
    public var OSType: String
    public var Architecture: String
    public var DockerRootDir: String
    public var Labels: [String]
    public var ExperimentalBuild: Bool
    public var Swarm: SwarmInfo
    public var Warnings: [String]?
}

/// `GET /version`.
public struct VersionInfo: Codable, Sendable, Equatable {
    public var Platform: PlatformName
    public var Components: [Component]
    public var Version: String
    public var ApiVersion: String
    public var MinAPIVersion: String
    public var GitCommit: String
    public var GoVersion: String
    public var Os: String
    public var Arch: String
    public var KernelVersion: String
    public var BuildTime: String

    public struct PlatformName: Codable, Sendable, Equatable { public var Name: String }
    public struct Component: Codable, Sendable, Equatable {
        public var Name: String
        public var Version: String
        public var Details: [String: String]?
    }
}
