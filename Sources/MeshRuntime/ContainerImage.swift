import Foundation
import MeshValues

/// How an image says it runs: the part of an OCI image config (`config` in the image's config
/// blob) the runtime needs. Filled by the image store from what it pulled (MeshImage's own
/// `ImageConfig` maps onto it field by field: nil Entrypoint/Cmd/StopSignal are empty here).
public struct ImageRunConfig: Sendable, Equatable, Codable {
    public var entrypoint: [String]
    public var cmd: [String]
    /// `KEY=value`, in the image's order.
    public var env: [String]
    public var workingDir: String
    /// `name`, `uid`, `name:group`, `uid:gid`; empty: root.
    public var user: String
    /// `SIGQUIT`, `QUIT` or `3`; empty: SIGTERM.
    public var stopSignal: String
    /// The image's HEALTHCHECK; nil: none.
    public var healthcheck: HealthConfig?
    public init(
        entrypoint: [String] = [], cmd: [String] = [], env: [String] = [], workingDir: String = "", user: String = "",
        stopSignal: String = "", healthcheck: HealthConfig? = nil
    ) {
        self.healthcheck = healthcheck
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
        self.stopSignal = stopSignal
    }
}

/// An image made ready for one task: a root file system directory that task may write to (the
/// image store's overlay for it, or a directory of its own) and the image's config.
public struct PreparedImage: Sendable, Equatable {
    public var reference: String
    public var rootfs: String
    public var config: ImageRunConfig
    public init(reference: String, rootfs: String, config: ImageRunConfig) {
        self.reference = reference
        self.rootfs = rootfs
        self.config = config
    }
}

/// Where container images come from: the image store (MeshImage) implements it. Asked only for
/// images the node's process catalog does not map.
public protocol RootfsProvider: Sendable {
    /// A root file system for `task` running `image`; throws `RuntimeError.image`-style errors
    /// with the store's reason (unknown image, pull failed) so the task is rejected with it.
    func prepare(image: String, task: String) async throws(RuntimeError) -> PreparedImage
    /// The task is gone: what `prepare` made for it (an overlay mount) can go.
    func release(task: String) async
    /// Whether `prepare` can make `image`'s root file system without asking a registry (the agent
    /// fetches what is not, outside its one-change-at-a-time turn, so a slow pull holds up
    /// nothing else on the node).
    func isFetched(image: String) async -> Bool
    /// Pulls `image` so that a `prepare` soon after needs no registry.
    func fetch(image: String) async throws(RuntimeError)
    /// What a previous life of the daemon prepared (mounts) and no task holds now; asked once
    /// the driver has removed that life's containers. Returns how many went.
    func removeLeftovers() async -> Int
}

extension RootfsProvider {
    /// A provider that makes nothing outside its tasks' lifetime has nothing to sweep.
    public func removeLeftovers() async -> Int { 0 }
    public func isFetched(image: String) async -> Bool { true }
    public func fetch(image: String) async throws(RuntimeError) {}
}

/// `--limit-memory` and `--limit-cpu` of the service.
public struct TaskResources: Sendable, Equatable, Codable {
    public var memoryBytes: Int64?
    /// 1e9 per CPU, as swarmkit's NanoCPUs.
    public var nanoCPUs: Int64?
    public init(memoryBytes: Int64? = nil, nanoCPUs: Int64? = nil) {
        self.memoryBytes = memoryBytes
        self.nanoCPUs = nanoCPUs
    }
}

/// What the service asks of a container beyond the process catalog's command line: swarmkit's
/// ContainerSpec as the OCI driver needs it. The process driver ignores it.
public struct ContainerOptions: Sendable, Equatable {
    /// The container's name as the manager gave it (`<service>.<slot>.<taskid>`); nil: made from
    /// the service name and slot.
    public var name: String?
    public var serviceID: String
    public var serviceName: String
    /// The replica's slot; a global service's node id.
    public var slot: String
    /// The service's `Command`: replaces the image's Entrypoint when not empty.
    public var command: [String]
    /// The service's `Args`: replace the image's Cmd when not empty.
    public var args: [String]
    public var user: String?
    public var workdir: String?
    public var hostname: String?
    public var stopSignal: String?
    public var labels: [String: String]
    public var resources: TaskResources
    public var mounts: [ContainerMount] = []
    /// The root file system read-only (`--read-only`).
    public var readOnly = false
    /// `CAP_…` names (or without the prefix) added to / dropped from Docker's default set; `ALL` as in Docker.
    public var capabilityAdd: [String] = []
    public var capabilityDrop: [String] = []
    public var sysctls: [String: String] = [:]
    /// Supplementary groups by name or gid, looked up in the image's /etc/group.
    public var groups: [String] = []
    /// `IP host [alias…]` lines added to the container's /etc/hosts.
    public var extraHosts: [String] = []
    public init(
        name: String? = nil, serviceID: String = "", serviceName: String = "", slot: String = "", command: [String] = [],
        args: [String] = [],
        user: String? = nil, workdir: String? = nil, hostname: String? = nil, stopSignal: String? = nil,
        labels: [String: String] = [:], resources: TaskResources = .init()
    ) {
        self.name = name
        self.serviceID = serviceID
        self.serviceName = serviceName
        self.slot = slot
        self.command = command
        self.args = args
        self.user = user
        self.workdir = workdir
        self.hostname = hostname
        self.stopSignal = stopSignal
        self.labels = labels
        self.resources = resources
    }
}

/// A service mount: `bind` (a host path that must exist), `volume` (a node-local named volume,
/// made on first use; an empty source is the task's own anonymous volume) or `tmpfs`.
public struct ContainerMount: Sendable, Equatable {
    public enum Kind: String, Sendable { case bind, volume, tmpfs }
    public var kind: Kind
    public var source: String
    public var target: String
    public var readOnly: Bool
    /// A new volume is not seeded with the image's files at the target.
    public var noCopy: Bool
    public var tmpfsSizeBytes: Int64?
    public var tmpfsMode: UInt32?
    public var volumeLabels: [String: String] = [:]
    /// Options the service set that no driver here applies: the container is refused, naming them.
    public var unapplied: [String] = []
    public init(
        kind: Kind, source: String = "", target: String, readOnly: Bool = false, noCopy: Bool = false, tmpfsSizeBytes: Int64? = nil,
        tmpfsMode: UInt32? = nil
    ) {
        self.kind = kind
        self.source = source
        self.target = target
        self.readOnly = readOnly
        self.noCopy = noCopy
        self.tmpfsSizeBytes = tmpfsSizeBytes
        self.tmpfsMode = tmpfsMode
    }
}

/// A secret's or config's content as a read-only file at `target` in the container.
public struct TaskFile: Sendable, Equatable {
    public var name: String
    public var target: String
    public var data: Data
    /// Numeric, as swarmkit's File.UID/GID; empty: root.
    public var uid: String
    public var gid: String
    public var mode: UInt32
    public init(name: String, target: String, data: Data, uid: String = "0", gid: String = "0", mode: UInt32 = 0o444) {
        self.name = name
        self.target = target
        self.data = data
        self.uid = uid
        self.gid = gid
        self.mode = mode
    }
}

/// Signal names as images and `--stop-signal` give them.
public enum SignalName {
    static let table: [String: Int32] = [
        "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11,
        "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20,
        "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
        "PWR": 30, "SYS": 31,
    ]

    /// `SIGQUIT`, `quit`, `3` → 3; empty → SIGTERM; anything else nil.
    public static func parse(_ text: String) -> Int32? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        if t.isEmpty { return 15 }
        if let n = Int32(t) { return (1...64).contains(n) ? n : nil }
        return table[t.hasPrefix("SIG") ? String(t.dropFirst(3)) : t]
    }
}
