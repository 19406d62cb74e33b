import Foundation
import MeshValues

/// The image's run defaults (the config blob's `config` object) as the task driver needs them.
/// Docker maps a task onto these: the service's Command replaces Entrypoint, Args replace Cmd,
/// Env is merged over Env, and the rest are defaults the service may override.
public struct ImageConfig: Sendable, Equatable, Codable {
    public var entrypoint: [String]?
    public var cmd: [String]?
    public var env: [String]
    public var workingDir: String
    public var user: String
    /// `"80/tcp"`, `"53/udp"`, sorted.
    public var exposedPorts: [String]
    public var stopSignal: String?
    public var labels: [String: String]
    /// Mount points the image declares (anonymous volumes), sorted.
    public var volumes: [String]
    /// The image's HEALTHCHECK (nil: none; an image stored before this field was read has none).
    public var healthcheck: HealthConfig?

    public init(
        entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String] = [], workingDir: String = "", user: String = "",
        exposedPorts: [String] = [], stopSignal: String? = nil, labels: [String: String] = [:], volumes: [String] = [],
        healthcheck: HealthConfig? = nil
    ) {
        self.healthcheck = healthcheck
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
        self.exposedPorts = exposedPorts
        self.stopSignal = stopSignal
        self.labels = labels
        self.volumes = volumes
    }
}

/// The config blob (OCI image config / Docker container image v1) with the fields meshd reads.
public struct ImageConfigFile: Codable, Sendable, Equatable {
    public struct RootFS: Codable, Sendable, Equatable {
        public var type: String
        public var diffIDs: [Digest]
        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }

    /// The `config` object, spelled as on the wire (Go field names).
    public struct RunConfig: Codable, Sendable, Equatable {
        public var User: String?
        public var ExposedPorts: [String: EmptyObject]?
        public var Env: [String]?
        public var Entrypoint: [String]?
        public var Cmd: [String]?
        public var Volumes: [String: EmptyObject]?
        public var WorkingDir: String?
        public var Labels: [String: String]?
        public var StopSignal: String?
        public var Healthcheck: HealthcheckObject?
    }

    /// `config.Healthcheck`, durations in nanoseconds as Go writes them.
    public struct HealthcheckObject: Codable, Sendable, Equatable {
        public var Test: [String]?
        public var Interval: Int64?
        public var Timeout: Int64?
        public var StartPeriod: Int64?
        public var StartInterval: Int64?
        public var Retries: Int64?

        /// Unset fields as zeros, which the merge with a service's check fills.
        var value: HealthConfig {
            var h = HealthConfig(test: Test ?? [])
            h.intervalNanos = Interval ?? 0
            h.timeoutNanos = Timeout ?? 0
            h.startPeriodNanos = StartPeriod ?? 0
            h.startIntervalNanos = StartInterval ?? 0
            h.retries = Retries ?? 0
            return h
        }
    }

    /// `{}` in `ExposedPorts`/`Volumes`; anything else there is tolerated and ignored.
    public struct EmptyObject: Codable, Sendable, Equatable {
        public init() {}
        public init(from decoder: Decoder) throws {}
        public func encode(to encoder: Encoder) throws { _ = encoder.container(keyedBy: Key.self) }
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }

    public var architecture: String
    public var os: String
    public var variant: String?
    public var created: String?
    public var config: RunConfig?
    public var rootfs: RootFS

    public var platform: Platform { Platform(architecture: architecture, os: os, variant: variant) }

    public var imageConfig: ImageConfig {
        let c = config
        return ImageConfig(
            entrypoint: c?.Entrypoint, cmd: c?.Cmd, env: c?.Env ?? [], workingDir: c?.WorkingDir ?? "", user: c?.User ?? "",
            exposedPorts: (c?.ExposedPorts.map { Array($0.keys) } ?? []).sorted(), stopSignal: c?.StopSignal,
            labels: c?.Labels ?? [:], volumes: (c?.Volumes.map { Array($0.keys) } ?? []).sorted(),
            healthcheck: c?.Healthcheck?.value)
    }

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case notLayers(String)
        public var description: String {
            switch self {
            case .malformed(let r): "malformed image config: \(r)"
            case .notLayers(let t): "image config rootfs.type is \"\(t)\", not \"layers\""
            }
        }
    }

    public static func decode(_ data: Data) throws(DecodeError) -> ImageConfigFile {
        let file: ImageConfigFile
        do { file = try JSONDecoder().decode(ImageConfigFile.self, from: data) } catch {
            throw .malformed(ManifestDocument.describe(error))
        }
        guard file.rootfs.type == "layers" else { throw .notLayers(file.rootfs.type) }
        return file
    }
}
