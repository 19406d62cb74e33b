import Foundation

/// The host fields of `/info` and `/version`, read once when the server starts.
public struct HostFacts: Sendable, Equatable {
    public var hostname: String
    public var kernelVersion: String
    public var operatingSystem: String
    public var architecture: String
    public var cpus: Int
    public var memoryBytes: Int64

    public static func read() -> HostFacts {
        var u = utsname()
        uname(&u)
        func field<T>(_ v: T) -> String {
            withUnsafeBytes(of: v) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
        }
        let osRelease = (try? String(contentsOfFile: "/etc/os-release", encoding: .utf8)) ?? ""
        let pretty =
            osRelease.split(separator: "\n").first { $0.hasPrefix("PRETTY_NAME=") }
            .map { $0.dropFirst("PRETTY_NAME=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\"")) } ?? "Linux"
        let machine = field(u.machine)
        return HostFacts(
            hostname: ProcessInfo.processInfo.hostName, kernelVersion: field(u.release), operatingSystem: pretty,
            architecture: machine, cpus: ProcessInfo.processInfo.activeProcessorCount,
            memoryBytes: Int64(ProcessInfo.processInfo.physicalMemory))
    }

    /// Go's GOARCH name, which `Platform.Architecture` and `/version` use.
    public var goArch: String {
        switch architecture {
        case "x86_64": "amd64"
        case "aarch64": "arm64"
        default: architecture
        }
    }
}

/// What the server says about itself.
public struct APIServerConfiguration: Sendable {
    public var engineVersion = "0.1.0"
    public var dataRoot = "/var/lib/meshd"
    /// Requests with a larger body get 413 and the connection is closed.
    public var maxBodyBytes = 1 << 20
    public var host = HostFacts.read()
    public init() {}
}
