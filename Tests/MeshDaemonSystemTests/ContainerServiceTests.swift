import Foundation
import MeshTestbed
import Testing

/// Issue 14 end to end: images built from Debian packages (scripts/build-images) in a real
/// Debian `docker-registry`, served on 127.0.0.1 in every node's namespace and named both as a
/// docker.io mirror (`redis:<tag>`, through `--registry-mirror`) and directly
/// (`127.0.0.1:<port>/library/busybox:<tag>`); three real daemons pull them and run them with
/// runc; the stock docker CLI drives it all.
@Suite(.serialized) struct ContainerServiceTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The references scripts/build-images printed, by image name (`redis` → every tag pushed).
    static func pushed(_ out: String) -> [String: [String]] {
        var tags: [String: [String]] = [:]
        for line in out.split(separator: "\n") where line.hasPrefix("pushed ") {
            let ref = String(line.split(separator: " ")[1])
            let name = ref.split(separator: "/").last!.split(separator: ":").first!
            tags[String(name), default: []].append(ref)
        }
        return tags
    }

    @Test func redisFromAMirrorServesThroughItsVIPAndRollsToANewImage() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let registry = try await LocalRegistry.start(tag: "mdc-registry")
        defer { registry.stop() }
        let built = try Exec.check([
            Self.repoRoot + "/scripts/build-images", "--registry", registry.address, "--repo-prefix", "library", "busybox", "redis",
        ])
        let images = Self.pushed(built)
        let redisRefs = try #require(images["redis"], "\(built)")
        let busyboxRef = try #require(images["busybox"]?.first, "\(built)")
        // Two tags of one redis build: the rolling update changes the reference, as a new version would.
        let redisTags = redisRefs.compactMap { $0.split(separator: ":").last.map(String.init) }
        try #require(redisTags.count >= 2, "\(built)")

        let c = try await DaemonCluster.build(
            tag: "mdc", nodes: 3, extraArguments: ["--registry-mirror", "http://\(registry.address)"])
        var replicas: [LocalRegistry] = []
        defer {
            c.destroy()
            for r in replicas { r.stop() }
        }
        for n in 1...3 { replicas.append(try await registry.replica(in: c.lab.nodeNamespace(n))) }
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let token = try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for n in 2...3 { _ = ClusterTests.check(try c.docker(n, ["swarm", "join", "--token", token, "\(c.address(1)):2377"]), "join", c) }
        _ = ClusterTests.check(try c.docker(1, ["network", "create", "-d", "overlay", "app"]), "network create", c)

        // docker.io/library/redis through the mirror; the CLI pins the digest the registry gave.
        let create = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "redis", "--replicas", "3", "--update-delay", "2s", "--network", "app",
                    "redis:\(redisTags[0])",
                ]), "service create redis", c)
        #expect(!create.stderr.contains("could not be accessed on a registry"), "\(create.stderr)")
        let pinned = try c.docker(1, ["service", "inspect", "redis", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}"]).stdout
        #expect(pinned.hasPrefix("redis:\(redisTags[0])@sha256:"), "\(pinned)")
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "client", "--network", "app", busyboxRef, "sleep", "3600"]),
            "service create client", c)
        let running = try await ClusterTests.eventually(.seconds(120)) {
            let r = try c.docker(1, ["service", "ps", "redis", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"]).stdout
            let k = try c.docker(1, ["service", "ps", "client", "--filter", "desired-state=running", "--format", "{{.CurrentState}}"])
                .stdout
            return r.split(separator: "\n").filter { $0.hasPrefix("Running") }.count == 3 && k.hasPrefix("Running")
        }
        let ps = try c.docker(1, ["service", "ps", "redis", "client", "--no-trunc"]).stdout
        try #require(running, "\(ps)\n\(c.log(1).suffix(3000))\n\(c.log(2).suffix(2000))")

        // From inside the client's namespace: PING by name, through the VIP, answered by real redis.
        let probe = try clientProbe(c)
        #expect(Self.pongs(probe) == Self.rounds, "\(probe)")

        // `docker ps` on each node lists exactly the tasks the manager placed there, by their
        // swarm names, and `docker exec` in the client container reaches redis by name as well.
        let placed = try c.docker(
            1,
            [
                "service", "ps", "redis", "client", "--filter", "desired-state=running", "--no-trunc", "--format",
                "{{.Name}}.{{.ID}} {{.Node}}",
            ]
        ).stdout.split(separator: "\n").map { $0.split(separator: " ") }
        for n in 1...3 {
            let expected = Set(placed.filter { $0.count == 2 && $0[1] == "node\(n)" }.map { String($0[0]) })
            let listed = Set(try c.docker(n, ["ps", "--format", "{{.Names}}"]).stdout.split(separator: "\n").map(String.init))
            #expect(listed == expected, "node\(n): docker ps \(listed), service ps \(expected)")
        }
        let clientNode = placed.first { $0.count == 2 && $0[0].hasPrefix("client.") }.flatMap { Int($0[1].dropFirst(4)) } ?? 1
        let container = try c.docker(clientNode, ["ps", "-q", "--filter", "label=com.docker.swarm.service.name=client"]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let viaExec = try c.docker(clientNode, ["exec", container, "sh", "-c", Self.pings("nc")])
        #expect(Self.pongs(viaExec.stdout) == Self.rounds, "\(viaExec.stdout)\(viaExec.stderr)")

        // Each node pulled what it runs: its image store lists redis by the pinned digest (pulled by
        // digest, so untagged, as on a Swarm node), and `docker pull` by tag tags it.
        let digest = String(pinned.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "@").last ?? "")
        for n in 1...3 {
            let images = try c.docker(n, ["image", "ls", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"]).stdout
            #expect(images.contains("redis <none> \(digest)"), "node\(n): \(images)")
        }
        let pull = ClusterTests.check(try c.docker(2, ["pull", "redis:\(redisTags[0])"]), "docker pull", c)
        #expect(pull.stdout.contains("Digest: \(digest)"), "\(pull.stdout)")
        let tagged = try c.docker(2, ["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]).stdout
        #expect(tagged.contains("redis:\(redisTags[0])"), "\(tagged)")
        let counted = try c.docker(2, ["info", "--format", "{{.Images}} {{.Containers}}"]).stdout
        let listed = try c.docker(2, ["image", "ls", "-q"]).stdout.split(separator: "\n").count
        let containers = try c.docker(2, ["ps", "-aq"]).stdout.split(separator: "\n").count
        #expect(
            counted == "\(listed) \(containers)\n" && listed >= 1 && containers >= 1,
            "info: \(counted), image ls: \(listed), ps -a: \(containers)")
        let inspect = try c.docker(2, ["image", "inspect", "redis:\(redisTags[0])", "--format", "{{json .Config.Cmd}} {{.Os}}"]).stdout
        #expect(inspect.contains("redis-server") && inspect.contains("linux"), "\(inspect)")

        // A rolling update to the other tag: one task at a time, each on the new image.
        _ = ClusterTests.check(
            try c.docker(1, ["service", "update", "--detach", "--image", "redis:\(redisTags[1])", "redis"]), "service update --image", c)
        var history = ""
        let rolled = try await ClusterTests.eventually(.seconds(120)) {
            history = try c.docker(
                1,
                [
                    "service", "ps", "redis", "--filter", "desired-state=running", "--no-trunc", "--format", "{{.Image}} {{.CurrentState}}",
                ]
            ).stdout
            let lines = history.split(separator: "\n")
            return lines.count == 3 && lines.allSatisfy { $0.hasPrefix("redis:\(redisTags[1])@sha256:") && $0.contains("Running") }
        }
        let all = try c.docker(1, ["service", "ps", "redis", "--no-trunc"]).stdout
        #expect(rolled, "\(history)\n\(all)")
        let again = try clientProbe(c)
        #expect(Self.pongs(again) == Self.rounds, "\(again)")

        // A reference no registry has, and a registry that is not there: the task says why, the rest runs on.
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "ghost", "\(registry.address)/library/nosuch:1"]),
            "service create ghost", c)
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "dead", "127.0.0.1:9/library/busybox:1"]), "service create dead", c)
        for (name, reason) in [("ghost", "not found"), ("dead", "unreachable")] {
            var errors = ""
            let failed = try await ClusterTests.eventually(.seconds(60)) {
                errors = try c.docker(1, ["service", "ps", name, "--no-trunc", "--format", "{{.CurrentState}}|{{.Error}}"]).stdout
                return errors.contains("Rejected") || errors.contains("Failed")
            }
            #expect(failed && errors.contains(reason), "\(name): \(errors)")
        }
        let still = try clientProbe(c)
        #expect(Self.pongs(still) == Self.rounds, "after the bad images: \(still)")
    }

    /// A database-style service keeps its data in a named volume: written through the service's
    /// name from another task, it survives `service rm`, and the next service on that volume
    /// reads it. The volume is made on first use, seeded from the image (owner kept: redis runs
    /// as its own user), refused removal while mounted.
    @Test func aNamedVolumeOutlivesItsServiceAndIsReachedByName() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let registry = try await LocalRegistry.start(tag: "mdv-registry")
        defer { registry.stop() }
        let built = try Exec.check([Self.repoRoot + "/scripts/build-images", "--registry", registry.address, "busybox", "redis"])
        let images = Self.pushed(built)
        let redis = try #require(images["redis"]?.first, "\(built)")
        let busybox = try #require(images["busybox"]?.first, "\(built)")
        let c = try await DaemonCluster.build(tag: "mdv", nodes: 1)
        var replicas: [LocalRegistry] = []
        defer {
            c.destroy()
            for r in replicas { r.stop() }
        }
        replicas.append(try await registry.replica(in: c.lab.nodeNamespace(1)))
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        _ = ClusterTests.check(try c.docker(1, ["network", "create", "-d", "overlay", "app"]), "network create", c)
        for (name, args) in [
            ("kv", ["--mount", "type=volume,source=kvdata,destination=/data", redis]), ("client", [busybox, "sleep", "3600"]),
        ] {
            _ = ClusterTests.check(
                try c.docker(1, ["service", "create", "--detach", "--name", name, "--network", "app"] + args), "service create \(name)", c)
        }
        try await waitRunning(c, ["kv", "client"])
        let set = try probe(c, "kv", "SET greeting hello\\r\\nSAVE\\r\\n")
        #expect(set.contains("+OK\r\n+OK"), "\(set)")
        let inspect = try c.docker(1, ["volume", "inspect", "kvdata", "--format", "{{.Mountpoint}} {{.Driver}} {{.Scope}}"]).stdout
        let mountpoint = String(inspect.split(separator: " ").first ?? "")
        #expect(inspect.hasSuffix("local local\n") && FileManager.default.fileExists(atPath: mountpoint + "/dump.rdb"), "\(inspect)")
        let busy = try c.docker(1, ["volume", "rm", "kvdata"])
        #expect(!busy.succeeded && busy.stderr.contains("volume is in use"), "\(busy.stderr)")

        _ = ClusterTests.check(try c.docker(1, ["service", "rm", "kv"]), "service rm", c)
        let gone = try await ClusterTests.eventually(.seconds(30)) {
            try c.docker(1, ["service", "ps", "kv"]).stderr.contains("no such service")
        }
        #expect(gone)
        #expect(try c.docker(1, ["volume", "ls", "--format", "{{.Name}}"]).stdout.contains("kvdata"))
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "kv2", "--network", "app", "--mount",
                    "type=volume,source=kvdata,destination=/data",
                    redis,
                ]), "service create kv2", c)
        try await waitRunning(c, ["kv2"])
        let got = try probe(c, "kv2", "GET greeting\\r\\n")
        #expect(got.contains("hello"), "\(got)")

        // A bind mount of a path the node does not have fails the task, naming it.
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "nobind", "--mount", "type=bind,source=/nonexistent-mdv,destination=/x",
                    busybox, "sleep", "60",
                ]),
            "service create nobind", c)
        var errors = ""
        let failed = try await ClusterTests.eventually(.seconds(60)) {
            errors = try c.docker(1, ["service", "ps", "nobind", "--no-trunc", "--format", "{{.CurrentState}}|{{.Error}}"]).stdout
            return errors.contains("bind source path does not exist")
        }
        #expect(failed, "\(errors)")
        // Once nothing mounts it, the volume goes.
        _ = ClusterTests.check(try c.docker(1, ["service", "rm", "kv2"]), "service rm kv2", c)
        let removed = try await ClusterTests.eventually(.seconds(30)) { try c.docker(1, ["volume", "rm", "kvdata"]).succeeded }
        #expect(removed && !FileManager.default.fileExists(atPath: mountpoint))
    }

    /// `--secret` and `--config` become read-only files in the container, owner and mode as asked
    /// (a secret under /run/secrets, a config at its target); a host-process task is refused them
    /// by name; a secret in use cannot be removed.
    @Test func secretsAndConfigsAreFilesInTheContainer() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let registry = try await LocalRegistry.start(tag: "mds-registry")
        defer { registry.stop() }
        let built = try Exec.check([Self.repoRoot + "/scripts/build-images", "--registry", registry.address, "busybox"])
        let busybox = try #require(Self.pushed(built)["busybox"]?.first, "\(built)")
        let c = try await DaemonCluster.build(tag: "mds", nodes: 1)
        var replicas: [LocalRegistry] = []
        defer {
            c.destroy()
            for r in replicas { r.stop() }
        }
        replicas.append(try await registry.replica(in: c.lab.nodeNamespace(1)))
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let dir = c.directory
        try "s3cr3t-value".write(toFile: dir + "/pw", atomically: true, encoding: .utf8)
        try "listen=8080".write(toFile: dir + "/conf", atomically: true, encoding: .utf8)
        _ = ClusterTests.check(try c.docker(1, ["secret", "create", "db_pw", dir + "/pw"]), "secret create", c)
        _ = ClusterTests.check(try c.docker(1, ["config", "create", "app_conf", dir + "/conf"]), "config create", c)
        let script =
            "cat /run/secrets/pw; echo; cat /etc/app.conf; echo; stat -c '%u:%g %a' /run/secrets/pw; "
            + "echo x > /run/secrets/pw 2>/dev/null && echo WRITABLE; sleep 3600"
        _ = ClusterTests.check(
            try c.docker(
                1,
                [
                    "service", "create", "--detach", "--name", "reader", "--secret", "source=db_pw,target=pw,uid=33,gid=44,mode=0440",
                    "--config", "source=app_conf,target=/etc/app.conf", busybox, "sh", "-c", script,
                ]), "service create reader", c)
        try await waitRunning(c, ["reader"])
        var logs = ""
        let read = try await ClusterTests.eventually(.seconds(20)) {
            logs = try c.docker(1, ["service", "logs", "--raw", "reader"]).stdout
            return logs.contains("33:44 440")
        }
        #expect(read && logs.contains("s3cr3t-value") && logs.contains("listen=8080") && !logs.contains("WRITABLE"), "\(logs)")
        let spec = try c.docker(1, ["service", "inspect", "reader", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}"]).stdout
        #expect(spec.contains("\"SecretName\":\"db_pw\"") && spec.contains("\"Name\":\"pw\"") && spec.contains("\"Mode\":288"), "\(spec)")
        // Nothing of the secret is on the node's disk: its file is on a tmpfs of the task's.
        let mounts = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
        #expect(mounts.split(separator: "\n").contains { $0.contains("\(c.dataRoot(1))/taskfiles/") && $0.contains(" tmpfs ") })

        let busy = try c.docker(1, ["secret", "rm", "db_pw"])
        #expect(!busy.succeeded && busy.stderr.contains("is in use by the following service: reader"), "\(busy.stderr)")
        // The catalog's busybox is a host process: it cannot get the file, and says so.
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "hostproc", "--secret", "db_pw", "busybox", "sleep", "60"]),
            "service create hostproc", c)
        var errors = ""
        let refused = try await ClusterTests.eventually(.seconds(30)) {
            errors = try c.docker(1, ["service", "ps", "hostproc", "--no-trunc", "--format", "{{.Error}}"]).stdout
            return errors.contains("mounted into containers only")
        }
        #expect(refused, "\(errors)")
        let missing = try c.docker(1, ["service", "create", "--detach", "--name", "nosecret", "--secret", "nosuch", busybox])
        #expect(!missing.succeeded, "\(missing.stdout)")
        for s in ["reader", "hostproc"] { _ = ClusterTests.check(try c.docker(1, ["service", "rm", s]), "service rm \(s)", c) }
        let removed = try await ClusterTests.eventually(.seconds(30)) { try c.docker(1, ["secret", "rm", "db_pw"]).succeeded }
        #expect(removed)
        let unmounted = try await ClusterTests.eventually(.seconds(30)) {
            !(try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)).contains("\(c.dataRoot(1))/taskfiles/")
        }
        #expect(unmounted)

        // A registry that accepts and never answers: its task waits, preparing, while the node
        // goes on with everything else (the pull is not in the agent's one-change-at-a-time turn).
        let silent = Process()
        silent.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        // Listening with a backlog and never accepting: every connection completes its handshake and hears nothing.
        silent.arguments = [
            "--net=/run/netns/\(c.lab.nodeNamespace(1))", "python3", "-c",
            "import socket, time\ns = socket.socket()\ns.bind(('127.0.0.1', 5999))\ns.listen(64)\ntime.sleep(600)",
        ]
        silent.standardOutput = FileHandle.nullDevice
        silent.standardInput = FileHandle.nullDevice
        try silent.run()
        defer {
            kill(silent.processIdentifier, SIGKILL)
            _ = DaemonCluster.reap(silent, within: .seconds(5))
        }
        let listening = try await ClusterTests.eventually(.seconds(10)) {
            let ss = try Exec.run(["nsenter", "--net=/run/netns/\(c.lab.nodeNamespace(1))", "ss", "-Hltn", "sport = :5999"])
            return ss.stdout.contains("5999")
        }
        try #require(listening, "the silent registry never listened")
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--no-resolve-image", "--name", "stuck", "127.0.0.1:5999/x:1"]),
            "service create stuck", c)
        let pulling = try await ClusterTests.eventually(.seconds(20)) {
            try c.docker(1, ["service", "ps", "stuck", "--format", "{{.CurrentState}}"]).stdout.hasPrefix("Preparing")
        }
        let stuckPS = try c.docker(1, ["service", "ps", "stuck", "--no-trunc"]).stdout
        #expect(pulling, "\(stuckPS)")
        let began = ContinuousClock.now
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "fast", "meshd/whoami"]), "service create fast", c)
        try await waitRunning(c, ["fast"])
        #expect(ContinuousClock.now - began < .seconds(15), "a stuck pull held up another service's start")
        let stuckNow = try c.docker(1, ["service", "ps", "stuck", "--no-trunc", "--format", "{{.CurrentState}} {{.Error}}"]).stdout
        #expect(stuckNow.hasPrefix("Preparing"), "\(stuckNow)")

        // A rolling update to an image still being pulled: the old task keeps running until the
        // new one's image is there (the pull comes before the stop, as in swarmkit).
        _ = ClusterTests.check(
            try c.docker(1, ["service", "update", "--detach", "--no-resolve-image", "--image", "127.0.0.1:5999/y:1", "fast"]),
            "service update fast", c)
        var states = ""
        let replacing = try await ClusterTests.eventually(.seconds(20)) {
            states = try c.docker(1, ["service", "ps", "fast", "--format", "{{.Image}} {{.DesiredState}} {{.CurrentState}}"]).stdout
            // Stop-first: the replacement is desired Ready until the old task has stopped.
            return states.contains("127.0.0.1:5999/y:1 Ready Preparing")
        }
        #expect(replacing, "\(states)")
        try await Task.sleep(for: .seconds(3))
        states = try c.docker(1, ["service", "ps", "fast", "--format", "{{.Image}} {{.DesiredState}} {{.CurrentState}}"]).stdout
        #expect(states.contains("meshd/whoami:latest Shutdown Running"), "the old task stopped before the new image was pulled: \(states)")
    }

    func waitRunning(_ c: DaemonCluster, _ services: [String]) async throws {
        let ok = try await ClusterTests.eventually(.seconds(90)) {
            try services.allSatisfy { s in
                try c.docker(1, ["service", "ps", s, "--filter", "desired-state=running", "--format", "{{.CurrentState}}"]).stdout
                    .hasPrefix("Running")
            }
        }
        let ps = try c.docker(1, ["service", "ps"] + services + ["--no-trunc"]).stdout
        try #require(ok, "\(ps)\n\(c.log(1).suffix(3000))")
    }

    /// RESP commands (printf escapes) to `service:6379` from the client task's namespace.
    func probe(_ c: DaemonCluster, _ service: String, _ commands: String) throws -> String {
        try inClient(c, "printf '\(commands)' | busybox nc -w 3 \(service) 6379")
    }

    /// `PING` to `redis:6379` from the client task's namespace, with the host's busybox (nc): the
    /// name is the embedded DNS's answer there, the address the service's VIP.
    func clientProbe(_ c: DaemonCluster) throws -> String { try inClient(c, Self.pings("busybox nc")) }

    /// A shell command run with the host's busybox in the running `client` task's namespace
    /// (its resolv.conf too, as `ip netns exec` binds it); its output, or why there is none.
    func inClient(_ c: DaemonCluster, _ script: String) throws -> String {
        let line =
            try c.docker(
                1,
                [
                    "service", "ps", "client", "--filter", "desired-state=running", "--no-trunc", "--format", "{{.ID}} {{.Node}}",
                ]
            ).stdout.split(separator: "\n").first.map(String.init) ?? ""
        let parts = line.split(separator: " ")
        guard parts.count == 2, let n = Int(parts[1].dropFirst(4)), let ns = c.taskNamespace(n, task: String(parts[0])) else {
            return "no running client task: \(line)"
        }
        let out = try Exec.run(["ip", "netns", "exec", ns, "busybox", "sh", "-c", script])
        return out.stdout + out.stderr
    }

    /// Connections through the VIP per probe: enough that a backend the client cannot reach (one
    /// of three, picked at random) fails the probe, not one time in three.
    static let rounds = 9

    /// `rounds` connections to `redis:6379`, a PING each; the input stays open until the answer
    /// is in (busybox nc stops reading once its stdin ends).
    static func pings(_ nc: String) -> String {
        "for i in $(seq \(rounds)); do (printf 'PING\\r\\n'; sleep 0.3) | \(nc) -w 3 redis 6379; done"
    }

    static func pongs(_ text: String) -> Int { text.components(separatedBy: "+PONG").count - 1 }
}
