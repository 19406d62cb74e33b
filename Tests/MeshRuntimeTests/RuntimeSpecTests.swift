import CMeshShim
import Foundation
import Testing
@testable import MeshRuntime

/// config.json goldens and the pure parts of the OCI driver (no root, no runc).
@Suite struct RuntimeSpecTests {
    static let passwd = """
        root:x:0:0:root:/root:/bin/sh
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        redis:x:999:999::/var/lib/redis:/usr/sbin/nologin
        app:x:1000:1000:App:/home/app:/bin/sh
        broken line
        """
    static let group = """
        root:x:0:
        redis:x:999:
        app:x:1000:
        audio:x:29:app,redis
        staff:x:50:app
        """

    static func input(
        command: [String] = [], args: [String] = [], user: String? = nil,
        image: ImageRunConfig = .init(entrypoint: ["/bin/sh"], cmd: ["-c", "true"])
    ) -> RuntimeSpecBuilder.Input {
        RuntimeSpecBuilder.Input(
            taskID: "k3v9x2m1q8", nodeID: "n0de1d", env: ["B": "2", "A": "1", "HOME": "/data"],
            container: ContainerOptions(
                serviceID: "s3rv1ce", serviceName: "redis", slot: "2", command: command, args: args, user: user,
                labels: ["team": "web", "com.docker.swarm.task.id": "spoofed"],
                resources: TaskResources(memoryBytes: 64 << 20, nanoCPUs: 1_500_000_000)),
            image: PreparedImage(reference: "127.0.0.1:5000/meshd/redis:7", rootfs: "/var/lib/meshd/rootfs/k3v9x2m1q8", config: image),
            networkNamespace: "/run/netns/mtask-n0de1d-k3v9x2m1q8", resolvConf: "/etc/netns/mtask-n0de1d-k3v9x2m1q8/resolv.conf",
            hosts: "/var/lib/meshd/containers/redis.2.k3v9x2m1q8/hosts", hostnameFile: "/etc/netns/mtask-n0de1d-k3v9x2m1q8/hostname",
            users: UserDatabase(passwd: passwd, group: group))
    }

    /// Compares with Tests/MeshRuntimeTests/Golden/<name>.json; MESHD_UPDATE_GOLDEN=1 rewrites it.
    func golden(_ name: String, _ spec: RuntimeSpec) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name).json").path
        let bytes = spec.encoded()
        if ProcessInfo.processInfo.environment["MESHD_UPDATE_GOLDEN"] == "1" {
            try bytes.write(to: URL(fileURLWithPath: path))
        }
        let want = try #require(FileManager.default.contents(atPath: path), "golden file \(path)")
        #expect(
            String(decoding: bytes, as: UTF8.self) == String(decoding: want, as: UTF8.self),
            "config.json differs from \(path) (MESHD_UPDATE_GOLDEN=1 rewrites it after review)")
        // And it reads back as the same value: what runc gets is what we built.
        #expect(try JSONDecoder().decode(RuntimeSpec.self, from: want) == spec)
    }

    @Test func aServiceTaskGoldens() throws {
        let spec = try RuntimeSpecBuilder.build(
            Self.input(
                args: ["redis-server", "--appendonly", "yes"], user: "redis",
                image: .init(
                    entrypoint: ["docker-entrypoint.sh"], cmd: ["redis-server"], env: ["PATH=/usr/local/bin:/usr/bin:/bin", "B=image"],
                    workingDir: "/data", user: "app", stopSignal: "SIGQUIT")))
        try golden("redis-service", spec)
        #expect(spec.process.args == ["docker-entrypoint.sh", "redis-server", "--appendonly", "yes"])
        #expect(spec.process.user == .init(uid: 999, gid: 999, additionalGids: [29]))
        #expect(spec.hostname == "k3v9x2m1q8")
        #expect(spec.annotations["com.docker.swarm.task.name"] == "redis.2.k3v9x2m1q8")
        #expect(spec.annotations["com.docker.swarm.task.id"] == "k3v9x2m1q8", "system labels win over the spec's")
        #expect(spec.annotations["team"] == "web")
        #expect(spec.linux.resources.memory?.limit == 64 << 20)
        #expect(spec.linux.resources.cpu == .init(quota: 150_000, period: 100_000))
        #expect(spec.linux.namespaces.last == .init(type: "network", path: "/run/netns/mtask-n0de1d-k3v9x2m1q8"))
        #expect(spec.process.capabilities.bounding.count == 14 && spec.process.capabilities.bounding.contains("CAP_NET_RAW"))
        #expect(!spec.process.capabilities.bounding.contains("CAP_NET_ADMIN"))
        // The image's PATH replaces the default in place; the service's B wins over the image's.
        #expect(
            spec.process.env == ["PATH=/usr/local/bin:/usr/bin:/bin", "HOSTNAME=k3v9x2m1q8", "B=2", "A=1", "HOME=/data"])
        #expect(spec.process.cwd == "/data")
    }

    @Test func aMinimalTaskGoldens() throws {
        var i = Self.input(image: .init(cmd: ["sh"]))
        i.container = ContainerOptions()
        i.env = [:]
        let spec = try RuntimeSpecBuilder.build(i)
        try golden("minimal", spec)
        #expect(spec.annotations["com.docker.swarm.task.name"] == "k3v9x2m1q8")
        #expect(spec.linux.resources.memory == nil && spec.linux.resources.cpu == nil)
        #expect(spec.process.env == ["PATH=\(RuntimeSpecBuilder.defaultPath)", "HOSTNAME=k3v9x2m1q8", "HOME=/root"])
        #expect(spec.process.cwd == "/")
    }

    /// swarmkit: Command replaces the Entrypoint (and the image's Cmd goes with it), Args replace Cmd.
    @Test func commandAndArgsMapAsSwarmkitDoes() {
        let image = ImageRunConfig(entrypoint: ["/entry"], cmd: ["default"])
        #expect(RuntimeSpecBuilder.arguments(image: image, command: [], args: []) == ["/entry", "default"])
        #expect(RuntimeSpecBuilder.arguments(image: image, command: [], args: ["x"]) == ["/entry", "x"])
        #expect(RuntimeSpecBuilder.arguments(image: image, command: ["/bin/sh"], args: []) == ["/bin/sh"])
        #expect(RuntimeSpecBuilder.arguments(image: image, command: ["/bin/sh"], args: ["-c", "y"]) == ["/bin/sh", "-c", "y"])
        #expect(RuntimeSpecBuilder.arguments(image: .init(cmd: ["sh"]), command: [], args: []) == ["sh"])
        #expect(throws: RuntimeError.self) { try RuntimeSpecBuilder.build(Self.input(image: .init())) }
    }

    /// The image's `/etc/passwd` is read without following symlinks: one that links to a host file
    /// gives no accounts (found by review), a real one does.
    @Test func accountFilesAreNotFollowedOutOfTheImage() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mkt-passwd-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rootfs/etc", withIntermediateDirectories: true)
        try "evil:x:4242:4242::/:/bin/sh\n".write(toFile: dir + "/host-passwd", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: dir + "/rootfs/etc/passwd", withDestinationPath: dir + "/host-passwd")
        #expect(UserDatabase(rootfs: dir + "/rootfs").accounts.isEmpty)
        #expect(throws: RuntimeError.self) { try UserDatabase(rootfs: dir + "/rootfs").resolve("evil") }
        try FileManager.default.removeItem(atPath: dir + "/rootfs/etc/passwd")
        try "app:x:1000:1000::/home/app:/bin/sh\n".write(toFile: dir + "/rootfs/etc/passwd", atomically: true, encoding: .utf8)
        #expect(try UserDatabase(rootfs: dir + "/rootfs").resolve("app").uid == 1000)
    }

    @Test func usersResolveInsideTheImage() throws {
        let db = UserDatabase(passwd: Self.passwd, group: Self.group)
        #expect(try db.resolve("") == .init(uid: 0, gid: 0, additionalGids: [], home: "/root"))
        #expect(try db.resolve("app") == .init(uid: 1000, gid: 1000, additionalGids: [29, 50], home: "/home/app"))
        #expect(try db.resolve("app:staff") == .init(uid: 1000, gid: 50, additionalGids: [29], home: "/home/app"))
        #expect(try db.resolve("1000:7") == .init(uid: 1000, gid: 7, additionalGids: [29, 50], home: "/home/app"))
        #expect(try db.resolve("4242") == .init(uid: 4242, gid: 0, additionalGids: [], home: "/"), "a number needs no entry")
        #expect(throws: RuntimeError.self) { try db.resolve("nobody") }
        #expect(throws: RuntimeError.self) { try db.resolve("app:nogroup") }
        #expect(throws: RuntimeError.self) { try RuntimeSpecBuilder.build(Self.input(user: "ghost")) }
        // Garbage account files resolve nothing by name and do not crash.
        let junk = UserDatabase(passwd: "::::\n\u{0}:x:y:z\n:::::::\n", group: "a:b\n::::")
        #expect(throws: RuntimeError.self) { try junk.resolve("root") }
        #expect(try junk.resolve("0").uid == 0)
    }

    @Test func stopSignalsParse() {
        #expect(SignalName.parse("") == 15)
        #expect(SignalName.parse("SIGQUIT") == 3)
        #expect(SignalName.parse("quit") == 3)
        #expect(SignalName.parse("9") == 9)
        #expect(SignalName.parse("SIGNOPE") == nil)
        #expect(SignalName.parse("99") == nil)
    }

    @Test func containerNamesAreServiceSlotTask() {
        #expect(RuntimeSpecBuilder.containerName(service: "web", slot: "3", taskID: "abc") == "web.3.abc")
        #expect(RuntimeSpecBuilder.containerName(service: "", slot: "", taskID: "abc") == "abc")
    }

    @Test func execProcessAddsToTheContainersEnvironment() throws {
        let spec = try RuntimeSpecBuilder.build(Self.input())
        let p = RuntimeSpecBuilder.execProcess(
            container: spec.process, args: ["sh"], env: ["A=9", "NEW=1"], user: nil, workdir: "/tmp", tty: .init(rows: 30, columns: 90))
        #expect(p.args == ["sh"])
        #expect(p.env.filter { $0.hasPrefix("A=") } == ["A=9"])
        #expect(p.env.contains("NEW=1") && p.env.contains("B=2"))
        #expect(p.terminal && p.consoleSize == .init(height: 30, width: 90))
        #expect(p.cwd == "/tmp" && p.user == spec.process.user)
    }

    /// The service's security and file-system fields land in config.json; what a container may not
    /// set (a host-wide sysctl, an unknown capability or group) is refused by name.
    @Test func serviceFieldsReachTheSpec() throws {
        var i = Self.input()
        i.container.readOnly = true
        i.container.capabilityAdd = ["net_admin"]
        i.container.capabilityDrop = ["CAP_MKNOD", "KILL"]
        i.container.sysctls = ["net.core.somaxconn": "1024"]
        i.container.groups = ["staff", "7"]
        i.mounts = [.init(destination: "/data", type: "bind", source: "/v/data/_data", options: ["rbind", "rw", "rprivate"])]
        let spec = try RuntimeSpecBuilder.build(i)
        #expect(spec.root.readonly)
        let caps = spec.process.capabilities.bounding
        #expect(caps.contains("CAP_NET_ADMIN") && !caps.contains("CAP_MKNOD") && !caps.contains("CAP_KILL") && caps.contains("CAP_CHOWN"))
        #expect(spec.linux.sysctl?["net.core.somaxconn"] == "1024" && spec.linux.sysctl?["net.ipv4.ping_group_range"] != nil)
        #expect(spec.process.user.additionalGids == [50, 7])
        #expect(spec.mounts.last?.destination == "/data" && spec.mounts.last?.source == "/v/data/_data")
        i.container.sysctls = ["vm.swappiness": "1"]
        #expect(throws: RuntimeError.self) { try RuntimeSpecBuilder.build(i) }
        i.container.sysctls = [:]
        i.container.capabilityAdd = ["CAP_FLY"]
        #expect(throws: RuntimeError.self) { try RuntimeSpecBuilder.build(i) }
        i.container.capabilityAdd = []
        i.container.groups = ["nosuchgroup"]
        #expect(throws: RuntimeError.self) { try RuntimeSpecBuilder.build(i) }
        #expect(try RuntimeSpecBuilder.capabilities(add: ["ALL"], drop: []).count == RuntimeSpecBuilder.allCapabilities.count)
        #expect(try RuntimeSpecBuilder.capabilities(add: [], drop: ["all"]).isEmpty)
        let allButRaw = try RuntimeSpecBuilder.capabilities(add: ["ALL"], drop: ["NET_RAW"])
        #expect(allButRaw.count == RuntimeSpecBuilder.allCapabilities.count - 1 && !allButRaw.contains("CAP_NET_RAW"))
        #expect(try RuntimeSpecBuilder.capabilities(add: ["NET_ADMIN"], drop: ["ALL"]) == ["CAP_NET_ADMIN"])
    }
}

/// Local volumes: made once (mkdir decides between two makers), seeded with owners and modes,
/// named by dockerd's rule, removed whole.
@Suite struct LocalVolumesTests {
    @Test func aVolumeIsMadeOnceSeededAndRemoved() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mkvol-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            .path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let volumes = LocalVolumes(dataRoot: dir)
        let first = try volumes.create("data", labels: ["a": "b"])
        let second = try volumes.create("data")
        #expect(first.created && !second.created && second.volume.labels == ["a": "b"])
        let rootfs = dir + "/rootfs"
        let image = rootfs + "/srv/data"
        try FileManager.default.createDirectory(atPath: image + "/sub", withIntermediateDirectories: true)
        try "x".write(toFile: image + "/sub/file", atomically: true, encoding: .utf8)
        #expect(chmod(image, 0o750) == 0)
        // The image reaches it through a symlink: resolved inside the rootfs.
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/data", withDestinationPath: "/srv/./data")
        try volumes.seed("data", rootfs: rootfs, target: "/data")
        #expect(FileManager.default.contents(atPath: volumes.dataPath("data") + "/sub/file") == Data("x".utf8))
        var st = stat()
        #expect(stat(volumes.dataPath("data"), &st) == 0 && st.st_mode & 0o777 == 0o750)
        #expect(volumes.inspect("data")?.seeded == true)
        // Seeded once: later mounts never copy again (the volume's files are the task's now).
        try "changed".write(toFile: volumes.dataPath("data") + "/sub/file", atomically: true, encoding: .utf8)
        try volumes.seed("data", rootfs: rootfs, target: "/data")
        #expect(FileManager.default.contents(atPath: volumes.dataPath("data") + "/sub/file") == Data("changed".utf8))

        // A link that points out of the image (absolute, or climbing with ..) stays inside it.
        let host = dir + "/host-secret"
        try FileManager.default.createDirectory(atPath: host, withIntermediateDirectories: true)
        try "host".write(toFile: host + "/file", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/escape", withDestinationPath: host)
        try FileManager.default.createSymbolicLink(atPath: rootfs + "/climb", withDestinationPath: "../../../../../../" + host)
        #expect(LocalVolumes.resolveInRoot(rootfs, "/escape") == nil, "no \(host) inside the image")
        #expect(LocalVolumes.resolveInRoot(rootfs, "/climb") == nil)
        #expect(LocalVolumes.resolveInRoot(rootfs, "/srv/../srv/data") == rootfs + "/srv/data")
        try volumes.create("other")
        try volumes.seed("other", rootfs: rootfs, target: "/escape")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: volumes.dataPath("other"))) ?? ["?"]).isEmpty)
        try volumes.remove("other")
        #expect(volumes.list().map(\.name) == ["data"])
        #expect(throws: LocalVolumes.Failure.self) { try volumes.create("../escape") }
        #expect(!LocalVolumes.isValidName("a") && !LocalVolumes.isValidName(".hidden") && LocalVolumes.isValidName("db-1.data_x"))
        try volumes.remove("data")
        #expect(volumes.list().isEmpty && !FileManager.default.fileExists(atPath: volumes.directory("data")))
        #expect(throws: LocalVolumes.Failure.self) { try volumes.remove("data") }
    }
}

/// The json-file writer: lines cut at newlines (and 16 KiB), streams tagged, a torn file readable.
@Suite struct JSONLogTests {
    func withFile(_ body: (String) throws -> Void) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mkt-jsonlog-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        ).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(path)
    }

    @Test func linesAreCutAndTagged() throws {
        try withFile { path in
            let w = try JSONLogWriter(path: path)
            w.append(.stdout, Array("one\ntw".utf8)[...])
            w.append(.stderr, Array("err \"quoted\" /slash\n".utf8)[...])
            w.append(.stdout, Array("o\nthree".utf8)[...])
            w.append(.stdout, [UInt8](repeating: UInt8(ascii: "x"), count: JSONLog.maxLine + 10)[...])
            w.flush()
            let entries = JSONLog.read(path)
            #expect(
                entries.map(\.log).prefix(4) == [
                    "one\n", "err \"quoted\" /slash\n", "two\n", "three" + String(repeating: "x", count: JSONLog.maxLine - 5),
                ])
            #expect(entries.map(\.stream) == [.stdout, .stderr, .stdout, .stdout, .stdout])
            #expect(entries.last?.log == String(repeating: "x", count: 15))
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.contains(#""stream":"stderr""#) && text.contains("/slash"), "Docker's field names, slashes unescaped")
            #expect(entries.allSatisfy { $0.time.count == 30 && $0.time.hasSuffix("Z") }, "\(entries.map(\.time))")
        }
    }

    @Test func garbageLinesAreSkipped() throws {
        try withFile { path in
            try
                "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n{\"log\":\ngarbage\n\u{0}\u{1}\n{\"log\":\"b\",\"stream\":\"nope\",\"time\":\"t\"}\n"
                .write(toFile: path, atomically: true, encoding: .utf8)
            #expect(JSONLog.read(path).map(\.log) == ["a\n"])
            #expect(JSONLog.read("/nonexistent/log").isEmpty)
        }
    }

    @Test func timestampsAreRFC3339Nano() {
        #expect(JSONLog.timestamp(timespec(tv_sec: 0, tv_nsec: 5)) == "1970-01-01T00:00:00.000000005Z")
        #expect(JSONLog.timestamp(timespec(tv_sec: 1_796_300_000, tv_nsec: 123_456_789)) == "2026-12-03T12:13:20.123456789Z")
    }
}

/// The console socket's receiving end refuses a message that carries no descriptor.
@Suite struct ConsoleSocketTests {
    @Test func aMessageWithoutADescriptorIsRefused() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { for fd in fds { close(fd) } }
        #expect(write(fds[1], "garbage", 7) == 7)
        #expect(meshd_recv_fd(fds[0]) == -1)
        #expect(errno == EBADMSG)
        close(fds[1])
        fds[1] = -1
        #expect(meshd_recv_fd(fds[0]) == -1, "the peer gone: nothing to receive")
    }
}
