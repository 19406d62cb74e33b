import Foundation

/// The part of the OCI runtime spec (config.json, runtime-spec 1.0.2) meshd writes for runc.
public struct RuntimeSpec: Sendable, Equatable, Codable {
    public struct User: Sendable, Equatable, Codable {
        public var uid: UInt32
        public var gid: UInt32
        public var additionalGids: [UInt32]?
    }
    public struct Capabilities: Sendable, Equatable, Codable {
        public var bounding: [String]
        public var effective: [String]
        public var permitted: [String]
    }
    public struct Rlimit: Sendable, Equatable, Codable {
        public var type: String
        public var hard: UInt64
        public var soft: UInt64
    }
    public struct ConsoleSize: Sendable, Equatable, Codable {
        public var height: UInt
        public var width: UInt
    }
    public struct Process: Sendable, Equatable, Codable {
        public var terminal: Bool
        public var consoleSize: ConsoleSize?
        public var user: User
        public var args: [String]
        public var env: [String]
        public var cwd: String
        public var capabilities: Capabilities
        public var rlimits: [Rlimit]?
        public var noNewPrivileges: Bool
    }
    public struct Root: Sendable, Equatable, Codable {
        public var path: String
        public var readonly: Bool
    }
    public struct Mount: Sendable, Equatable, Codable {
        public var destination: String
        public var type: String
        public var source: String
        public var options: [String]
    }
    public struct Namespace: Sendable, Equatable, Codable {
        public var type: String
        public var path: String?
    }
    public struct Device: Sendable, Equatable, Codable {
        public var allow: Bool
        public var access: String
    }
    public struct Memory: Sendable, Equatable, Codable {
        public var limit: Int64
    }
    public struct CPU: Sendable, Equatable, Codable {
        public var quota: Int64
        public var period: UInt64
    }
    public struct Resources: Sendable, Equatable, Codable {
        public var devices: [Device]
        public var memory: Memory?
        public var cpu: CPU?
    }
    public struct Linux: Sendable, Equatable, Codable {
        public var namespaces: [Namespace]
        public var cgroupsPath: String
        public var resources: Resources
        public var sysctl: [String: String]?
        public var maskedPaths: [String]
        public var readonlyPaths: [String]
    }

    public var ociVersion: String
    public var process: Process
    public var root: Root
    public var hostname: String
    public var mounts: [Mount]
    public var annotations: [String: String]
    public var linux: Linux

    /// Stable bytes: sorted keys, so a golden file and a written bundle compare byte for byte.
    public func encoded() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Every field is a plain value: encoding cannot fail.
        return (try? e.encode(self)) ?? Data()
    }
}

/// The rootfs's account files, read once per task for `user` (names resolve inside the image,
/// never on the host).
public struct UserDatabase: Sendable, Equatable {
    public struct Account: Sendable, Equatable {
        public var name: String
        public var uid: UInt32
        public var gid: UInt32
        public var home: String
    }
    public struct Group: Sendable, Equatable {
        public var name: String
        public var gid: UInt32
        public var members: [String]
    }
    public var accounts: [Account]
    public var groups: [Group]

    /// Parses /etc/passwd and /etc/group text; lines that do not parse are skipped, as libc does.
    public init(passwd: String, group: String) {
        accounts = passwd.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 7, let uid = UInt32(f[2]), let gid = UInt32(f[3]) else { return nil }
            return Account(name: String(f[0]), uid: uid, gid: gid, home: String(f[5]))
        }
        groups = group.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 4, let gid = UInt32(f[2]) else { return nil }
            return Group(name: String(f[0]), gid: gid, members: f[3].split(separator: ",").map(String.init))
        }
    }

    /// The image's own files: `etc` and the file are opened without following symlinks, so an image
    /// whose `/etc/passwd` links to a host path (`-> /var/lib/meshd/…`) gets no entries, never the
    /// host's file (found by review). A user name then fails to resolve with Docker's error.
    public init(rootfs: String) {
        self.init(passwd: Self.readInside(rootfs, "passwd"), group: Self.readInside(rootfs, "group"))
    }

    static func readInside(_ rootfs: String, _ name: String) -> String {
        let root = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard root >= 0 else { return "" }
        defer { close(root) }
        let etc = openat(root, "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard etc >= 0 else { return "" }
        defer { close(etc) }
        let fd = openat(etc, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        // passwd and group files are small; a huge one is not an account database.
        let data = (try? handle.read(upToCount: 4 << 20)) ?? nil
        return data.map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    public struct Resolved: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public var additionalGids: [UInt32]
        public var home: String
    }

    /// Docker's rules: `""` is root; a number needs no entry (gid 0 then, home `/`); a name must
    /// exist; `:group` replaces the account's group; the groups that list the user are added.
    public func resolve(_ spec: String) throws(RuntimeError) -> Resolved {
        let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let userPart = parts.first ?? ""
        let account: Account?
        let uid: UInt32
        var gid: UInt32
        if userPart.isEmpty {
            account = accounts.first { $0.uid == 0 }
            uid = 0
            gid = account?.gid ?? 0
        } else if let n = UInt32(userPart) {
            account = accounts.first { $0.uid == n }
            uid = n
            gid = account?.gid ?? 0
        } else {
            guard let a = accounts.first(where: { $0.name == userPart }) else {
                throw .user(spec: spec, reason: "no user \"\(userPart)\" in the image's /etc/passwd")
            }
            account = a
            uid = a.uid
            gid = a.gid
        }
        if parts.count == 2 {
            let g = parts[1]
            if let n = UInt32(g) {
                gid = n
            } else if let found = groups.first(where: { $0.name == g }) {
                gid = found.gid
            } else {
                throw .user(spec: spec, reason: "no group \"\(g)\" in the image's /etc/group")
            }
        }
        let extra = account.map { a in groups.filter { $0.members.contains(a.name) && $0.gid != gid }.map(\.gid) } ?? []
        return Resolved(uid: uid, gid: gid, additionalGids: extra, home: account?.home ?? "/")
    }
}

/// config.json for one task, from its launch, its image and its namespace. Pure: the same input
/// gives the same bytes (the golden tests hold it to that).
public enum RuntimeSpecBuilder {
    /// Docker's default capability set (moby `oci/caps/defaults.go`): NET_RAW for ping, no NET_ADMIN.
    public static let defaultCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]
    static let maskedPaths = [
        "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ]
    static let readonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    /// What Docker sets in a container's own network namespace: ping without CAP_NET_RAW (ICMP
    /// datagram sockets for every group), and low ports for any user.
    static let namespacedSysctls = ["net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"]
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// CFS period for `--limit-cpu`, as Docker's NanoCPUs conversion uses.
    static let cpuPeriod: UInt64 = 100_000

    /// Everything the spec is made from.
    public struct Input: Sendable, Equatable {
        public var taskID: String
        public var nodeID: String
        public var env: [String: String]
        public var container: ContainerOptions
        public var image: PreparedImage
        /// `/run/netns/<name>`: the task's namespace, already attached to its networks.
        public var networkNamespace: String
        /// Files bound over the image's /etc/resolv.conf, /etc/hosts, /etc/hostname.
        public var resolvConf: String
        public var hosts: String
        public var hostnameFile: String
        public var users: UserDatabase
        /// The service's mounts, resolved to host paths by the driver (volumes made, binds checked).
        public var mounts: [RuntimeSpec.Mount] = []
        public init(
            taskID: String, nodeID: String, env: [String: String], container: ContainerOptions, image: PreparedImage,
            networkNamespace: String, resolvConf: String, hosts: String, hostnameFile: String, users: UserDatabase
        ) {
            self.taskID = taskID
            self.nodeID = nodeID
            self.env = env
            self.container = container
            self.image = image
            self.networkNamespace = networkNamespace
            self.resolvConf = resolvConf
            self.hosts = hosts
            self.hostnameFile = hostnameFile
            self.users = users
        }
    }

    /// `<service>.<slot>.<taskid>`, swarmkit's container name (just the task id without a service).
    public static func containerName(service: String, slot: String, taskID: String) -> String {
        service.isEmpty ? taskID : "\(service).\(slot.isEmpty ? "0" : slot).\(taskID)"
    }

    public static func containerName(_ c: ContainerOptions, taskID: String) -> String {
        c.name.flatMap { $0.isEmpty ? nil : $0 } ?? containerName(service: c.serviceName, slot: c.slot, taskID: taskID)
    }

    /// The host name inside: the service's, else the task id (as the process driver's tasks).
    public static func hostname(_ i: Input) -> String { hostname(container: i.container, taskID: i.taskID) }
    public static func hostname(for t: TaskLaunch) -> String { hostname(container: t.container, taskID: t.id) }
    static func hostname(container: ContainerOptions, taskID: String) -> String {
        container.hostname.flatMap { $0.isEmpty ? nil : $0 } ?? taskID
    }

    /// swarmkit's mapping: the service's Command replaces the Entrypoint (and then the image's
    /// Cmd is not used); its Args replace the Cmd.
    public static func arguments(image: ImageRunConfig, command: [String], args: [String]) -> [String] {
        if !command.isEmpty { return command + args }
        return image.entrypoint + (args.isEmpty ? image.cmd : args)
    }

    public static func build(_ i: Input) throws(RuntimeError) -> RuntimeSpec {
        let c = i.container
        let name = containerName(c, taskID: i.taskID)
        let argv = arguments(image: i.image.config, command: c.command, args: c.args)
        guard !argv.isEmpty else { throw .noCommand(image: i.image.reference) }
        let user = try i.users.resolve(c.user ?? i.image.config.user)
        let host = hostname(i)

        // The image's environment, then the service's (which wins, key by key), order kept.
        var env: [String] = []
        var index: [String: Int] = [:]
        func set(_ key: String, _ line: String) {
            if let at = index[key] {
                env[at] = line
            } else {
                index[key] = env.count
                env.append(line)
            }
        }
        set("PATH", "PATH=\(defaultPath)")
        set("HOSTNAME", "HOSTNAME=\(host)")
        for line in i.image.config.env {
            let key = line.split(separator: "=", maxSplits: 1).first.map(String.init) ?? line
            set(key, line)
        }
        for (key, value) in i.env.sorted(by: { $0.key < $1.key }) { set(key, "\(key)=\(value)") }
        if index["HOME"] == nil { set("HOME", "HOME=\(user.home.isEmpty ? "/" : user.home)") }

        let workdir = c.workdir.flatMap { $0.isEmpty ? nil : $0 } ?? i.image.config.workingDir
        let caps = try capabilities(add: c.capabilityAdd, drop: c.capabilityDrop)
        var groupIDs = user.additionalGids
        for g in c.groups {
            guard let gid = UInt32(g) ?? i.users.groups.first(where: { $0.name == g })?.gid else {
                throw .user(spec: g, reason: "no group \"\(g)\" in the image's /etc/group (--group)")
            }
            if !groupIDs.contains(gid) { groupIDs.append(gid) }
        }
        var sysctl = namespacedSysctls
        for (key, value) in c.sysctls {
            // Only what is the container's own: its network namespace and IPC; a host-wide key is refused by name.
            guard
                key.hasPrefix("net.") || key.hasPrefix("kernel.msg") || key.hasPrefix("kernel.sem") || key.hasPrefix("kernel.shm")
                    || key.hasPrefix("fs.mqueue.")
            else {
                throw .unsupported("sysctl \(key) is not namespaced: a container may set net.*, kernel.msg*/sem*/shm* and fs.mqueue.* only")
            }
            sysctl[key] = value
        }
        var annotations = c.labels
        let system: [String: String] = [
            "com.docker.swarm.node.id": i.nodeID,
            "com.docker.swarm.service.id": c.serviceID,
            "com.docker.swarm.service.name": c.serviceName,
            "com.docker.swarm.task": "",
            "com.docker.swarm.task.id": i.taskID,
            "com.docker.swarm.task.name": name,
        ]
        annotations.merge(system) { _, swarm in swarm }

        var resources = RuntimeSpec.Resources(devices: [.init(allow: false, access: "rwm")])
        if let m = c.resources.memoryBytes, m > 0 { resources.memory = .init(limit: m) }
        if let n = c.resources.nanoCPUs, n > 0 {
            resources.cpu = .init(quota: n * Int64(cpuPeriod) / 1_000_000_000, period: cpuPeriod)
        }

        return RuntimeSpec(
            ociVersion: "1.0.2",
            process: .init(
                terminal: false, consoleSize: nil,
                user: .init(uid: user.uid, gid: user.gid, additionalGids: groupIDs.isEmpty ? nil : groupIDs),
                args: argv, env: env, cwd: workdir.isEmpty ? "/" : workdir,
                capabilities: .init(bounding: caps, effective: caps, permitted: caps),
                // None: the task inherits the daemon's limits, as a Docker container inherits
                // containerd's (raising them needs CAP_SYS_RESOURCE, which a nested host may withhold).
                rlimits: nil,
                noNewPrivileges: false),
            root: .init(path: i.image.rootfs, readonly: c.readOnly),
            hostname: host,
            mounts: [
                .init(destination: "/proc", type: "proc", source: "proc", options: ["nosuid", "noexec", "nodev"]),
                .init(destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"]),
                .init(
                    destination: "/dev/pts", type: "devpts", source: "devpts",
                    options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
                .init(destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"]),
                .init(destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["ro", "nosuid", "noexec", "nodev"]),
                .init(destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"]),
                .init(
                    destination: "/dev/shm", type: "tmpfs", source: "shm",
                    options: ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]),
                .init(destination: "/etc/resolv.conf", type: "bind", source: i.resolvConf, options: ["rbind", "rprivate"]),
                .init(destination: "/etc/hosts", type: "bind", source: i.hosts, options: ["rbind", "rprivate"]),
                .init(destination: "/etc/hostname", type: "bind", source: i.hostnameFile, options: ["rbind", "rprivate"]),
            ] + i.mounts,
            annotations: annotations,
            linux: .init(
                namespaces: [
                    .init(type: "pid"), .init(type: "ipc"), .init(type: "uts"), .init(type: "mount"),
                    .init(type: "network", path: i.networkNamespace),
                ],
                cgroupsPath: "/meshd/\(name)",
                resources: resources,
                sysctl: sysctl,
                maskedPaths: maskedPaths,
                readonlyPaths: readonlyPaths))
    }

    /// Docker's default set with the service's additions and removals (names with or without
    /// `CAP_`, any case; `ALL` adds or drops every one), in a stable order.
    public static func capabilities(add: [String], drop: [String]) throws(RuntimeError) -> [String] {
        func canonical(_ name: String) throws(RuntimeError) -> String {
            let upper = name.uppercased()
            let full = upper.hasPrefix("CAP_") ? upper : "CAP_" + upper
            guard full == "CAP_ALL" || allCapabilities.contains(full) else { throw .unsupported("unknown capability \"\(name)\"") }
            return full
        }
        // Unchanged, Docker's own order (what the goldens hold).
        if add.isEmpty && drop.isEmpty { return defaultCapabilities }
        let adds = try add.map(canonical), drops = try drop.map(canonical)
        // Docker's TweakCapabilities: `--cap-add ALL` is every capability but the drops; otherwise the
        // default set less the drops (ALL: none of it) plus the adds.
        var set: Set<String>
        if adds.contains("CAP_ALL") {
            set = Set(allCapabilities).subtracting(drops)
        } else {
            set = drops.contains("CAP_ALL") ? [] : Set(defaultCapabilities).subtracting(drops)
            set.formUnion(adds)
        }
        return allCapabilities.filter(set.contains)
    }

    /// Every capability Linux defines, in number order.
    static let allCapabilities = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
        "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
        "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
        "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// The process of `runc exec`: the container's user and capabilities unless the request
    /// names others, its environment with the request's added.
    public static func execProcess(
        container spec: RuntimeSpec.Process, args: [String], env: [String], user: RuntimeSpec.User?, workdir: String?, tty: ExecTerminal?
    ) -> RuntimeSpec.Process {
        var p = spec
        p.args = args
        for line in env {
            let key = (line.split(separator: "=", maxSplits: 1).first.map(String.init) ?? line) + "="
            p.env.removeAll { $0.hasPrefix(key) }
            p.env.append(line)
        }
        if let user { p.user = user }
        if let workdir, !workdir.isEmpty { p.cwd = workdir }
        p.terminal = tty != nil
        p.consoleSize = tty.map { .init(height: UInt($0.rows), width: UInt($0.columns)) }
        p.rlimits = nil
        return p
    }
}

/// A pty's size in character cells.
public struct ExecTerminal: Sendable, Equatable {
    public var rows: UInt16
    public var columns: UInt16
    public init(rows: UInt16, columns: UInt16) {
        self.rows = rows
        self.columns = columns
    }
}
