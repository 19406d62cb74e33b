import Foundation
import Synchronization
import MeshAPI
import MeshKernel
import MeshRuntime
import MeshTestbed
import Testing

@testable import MeshDaemon

/// The image store these tests stand in for: one busybox-static rootfs for every image.
struct BusyboxImages: RootfsProvider {
    let rootfs: String
    func prepare(image: String, task: String) async throws(RuntimeError) -> PreparedImage {
        PreparedImage(reference: image, rootfs: rootfs, config: ImageRunConfig(cmd: ["sh"], env: ["PATH=/bin"]))
    }
    func release(task: String) async {}
}

/// A node outside any swarm that serves only its containers: `NodeContainers`, the code the
/// daemon serves its socket with, over a runtime of the test's.
struct ContainersOnlyEngine: EngineBackend {
    let containers: NodeContainers

    func listContainers(_ o: ContainerListOptions) async throws(EngineError) -> [ContainerSummary] { await containers.list(o) }
    func inspectContainer(_ ref: String) async throws(EngineError) -> ContainerInspect { try await containers.inspect(ref) }
    func containerLogs(_ ref: String, options: LogOptions) async throws(EngineError) -> AsyncStream<OutputChunk> {
        try await containers.logs(ref, options: options)
    }
    func waitContainer(_ ref: String) async throws(EngineError) -> AsyncStream<ContainerWaitResponse> { try await containers.wait(ref) }
    func killContainer(_ ref: String, signal: String?) async throws(EngineError) { try await containers.kill(ref, signal: signal) }
    func containerCounts() async -> ContainerCounts { await containers.counts() }
    func createExec(_ ref: String, _ r: ExecCreateRequest) async throws(EngineError) -> String { try await containers.createExec(ref, r) }
    func startExec(_ id: String, _ r: ExecStartRequest) async throws(EngineError) -> ExecAttachment? {
        try await containers.startExec(id, r)
    }
    func resizeExec(_ id: String, rows: UInt16, columns: UInt16) async throws(EngineError) {
        try await containers.resizeExec(id, rows: rows, columns: columns)
    }
    func inspectExec(_ id: String) async throws(EngineError) -> ExecInspect { try await containers.inspectExec(id) }

    // Nothing of a swarm.
    func swarmInfo() async -> SwarmInfo { SwarmInfo() }
    func inspectSwarm() async throws(EngineError) -> Swarm { throw .notInSwarm }
    func initSwarm(_ request: SwarmInitRequest) async throws(EngineError) -> String { throw .notInSwarm }
    func joinSwarm(_ request: SwarmJoinRequest) async throws(EngineError) { throw .notInSwarm }
    func leaveSwarm(force: Bool) async throws(EngineError) { throw .notPartOfSwarm }
    func updateSwarm(_ spec: SwarmSpec, version: UInt64, rotate: SwarmRotation) async throws(EngineError) { throw .notInSwarm }
    func unlockKey() async throws(EngineError) -> String { throw .notInSwarm }
    func listNodes(_ filter: NodeFilter) async throws(EngineError) -> [Node] { throw .notInSwarm }
    func inspectNode(_ ref: String) async throws(EngineError) -> Node { throw .notInSwarm }
    func updateNode(_ ref: String, version: UInt64, spec: NodeSpec) async throws(EngineError) { throw .notInSwarm }
    func removeNode(_ ref: String, force: Bool) async throws(EngineError) { throw .notInSwarm }
    func createService(_ spec: ServiceSpec) async throws(EngineError) -> ServiceCreateResponse { throw .notInSwarm }
    func listServices(_ filter: ServiceFilter, status: Bool) async throws(EngineError) -> [Service] { throw .notInSwarm }
    func inspectService(_ ref: String) async throws(EngineError) -> Service { throw .notFound("service \(ref) not found") }
    func updateService(_ ref: String, version: UInt64, spec: ServiceSpec, rollback: Bool) async throws(EngineError)
        -> ServiceUpdateResponse
    { throw .notInSwarm }
    func removeService(_ ref: String) async throws(EngineError) { throw .notInSwarm }
    func serviceLogs(_ ref: String, options: LogOptions) async throws(EngineError) -> AsyncStream<LogMessage> { throw .notInSwarm }
    func listTasks(_ filter: TaskFilter) async throws(EngineError) -> [SwarmTask] { throw .notInSwarm }
    func inspectTask(_ ref: String) async throws(EngineError) -> SwarmTask { throw .notFound("task \(ref) not found") }
    func createNetwork(_ request: NetworkCreateRequest) async throws(EngineError) -> NetworkCreateResponse { throw .notInSwarm }
    func listNetworks(_ filter: NetworkFilter) async throws(EngineError) -> [NetworkResource] { [] }
    func inspectNetwork(_ ref: String, scope: String?) async throws(EngineError) -> NetworkResource {
        throw .notFound("network \(ref) not found")
    }
    func removeNetwork(_ ref: String) async throws(EngineError) { throw .notInSwarm }
    func pruneNetworks() async throws(EngineError) -> [String] { [] }
    func events(_ query: EventQuery) async throws(EngineError) -> AsyncStream<EventMessage> { AsyncStream { $0.finish() } }
}

/// A runtime with the OCI driver on a busybox rootfs behind an API socket, and a cleanup that
/// removes what the test made and reports what the runtime had left behind.
final class HealthBoard: Sendable {
    private let states = Mutex<[String: HealthState]>([:])
    func get(_ id: String) -> HealthState? { states.withLock { $0[id] } }
    func set(_ id: String, _ s: HealthState) { states.withLock { $0[id] = s } }
}

struct ContainerLab {
    static let service = "mkcli"
    let dir: String
    let node: String
    let rt: TaskRuntime
    let runc: Runc
    let server: APIServer
    let socket: String
    let dockerConfig: String
    /// Task health as the node agent would hold it, for the API to show.
    let health: HealthBoard

    static func make() async throws -> ContainerLab {
        guard getuid() == 0 else { throw Skip("needs root") }
        guard (try? Exec.run(["runc", "--version"]))?.succeeded == true else { throw Skip("runc is not installed") }
        // A TTY exec leaves its process to the nearest subreaper: this test process.
        try Subreaper.become()
        let tag = "\(getpid())\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        let dir = "/tmp/mkt-cli-\(tag)"
        do {
            let rootfs = dir + "/rootfs"
            let fm = FileManager.default
            for sub in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
                try fm.createDirectory(atPath: "\(rootfs)/\(sub)", withIntermediateDirectories: true)
            }
            try fm.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
            for name in try Exec.check(["/bin/busybox", "--list"]).split(separator: "\n") where name != "busybox" {
                try fm.createSymbolicLink(atPath: "\(rootfs)/bin/\(name)", withDestinationPath: "busybox")
            }
            try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: true, encoding: .utf8)
            try "root:x:0:\n".write(toFile: rootfs + "/etc/group", atomically: true, encoding: .utf8)
            let node = "mkcli\(getpid())"
            let rt = try TaskRuntime(
                nodeID: node, dataRoot: dir + "/data", meshd: DataplaneLab.locateMeshd(), images: BusyboxImages(rootfs: rootfs))
            let socket = "/tmp/mkt-cli-\(tag).sock"
            let dockerConfig = dir + "/docker"
            try fm.createDirectory(atPath: dockerConfig, withIntermediateDirectories: true)
            let health = HealthBoard()
            let engine = ContainersOnlyEngine(containers: NodeContainers(runtime: rt, health: { id in health.get(id) }))
            let server = try await APIServer.start(socketPath: socket, router: APIRouter(backend: engine))
            return ContainerLab(
                dir: dir, node: node, rt: rt, runc: Runc(root: dir + "/data/runc"), server: server, socket: socket,
                dockerConfig: dockerConfig, health: health)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    /// Starts a task of service `mkcli` (slot 1) running `script` in sh.
    func start(_ id: String, _ script: String, mounts: [ContainerMount] = []) async throws -> TaskRuntime.Running {
        let args = ["sh", "-c", script]
        var options = ContainerOptions(
            serviceID: "svc-\(Self.service)", serviceName: Self.service, slot: "1", args: args, labels: ["test": "cli"])
        options.mounts = mounts
        return try await rt.start(TaskLaunch(id: id, image: "mkt/busybox", args: args, container: options))
    }

    func name(_ id: String) -> String { "\(Self.service).1.\(id)" }

    /// The real docker CLI against the lab's socket, off the cooperative pool.
    func docker(_ args: String...) async throws -> Exec.Output { try await docker(args) }
    func docker(_ args: [String]) async throws -> Exec.Output {
        try await shell(["docker", "--config", dockerConfig, "-H", "unix://\(socket)"] + args)
    }

    /// A shell line with `$DOCKER` standing for the CLI on this socket.
    func sh(_ line: String) async throws -> Exec.Output {
        try await shell(["sh", "-c", "DOCKER='docker --config \(dockerConfig) -H unix://\(socket)'; \(line)"])
    }

    func shell(_ argv: [String]) async throws -> Exec.Output {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<Exec.Output, any Error>) in
            Thread {
                do { k.resume(returning: try Exec.run(["timeout", "-s", "KILL", "60"] + argv)) } catch { k.resume(throwing: error) }
            }.start()
        }
    }

    func cleanup(tasks: [String]) async -> [String] {
        await server.stop()
        for id in tasks { await rt.remove(id) }
        var leaked: [String] = []
        for id in runc.list() {
            leaked.append("runc container \(id)")
            try? runc.delete(id)
        }
        let prefix = TaskRuntime.namespacePrefix(nodeID: node)
        for ns in NetworkNamespace.list() where ns.hasPrefix(prefix) {
            leaked.append("namespace \(ns)")
            TaskRuntime.removeNamespace(ns)
        }
        let bundles = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/data/containers")) ?? []
        leaked += bundles.map { "bundle \($0)" }
        try? FileManager.default.removeItem(atPath: dir)
        unlink(socket)
        return leaked
    }

    static func with(tasks: [String], _ body: (ContainerLab) async throws -> Void) async throws {
        let lab: ContainerLab
        do { lab = try await make() } catch let s as Skip {
            print("skipped: \(s.why)")
            return
        }
        var failure: (any Error)?
        do { try await body(lab) } catch { failure = error }
        let leaked = await lab.cleanup(tasks: tasks)
        #expect(leaked.isEmpty, "left behind: \(leaked)")
        if let failure { throw failure }
    }

    struct Skip: Error {
        let why: String
        init(_ why: String) { self.why = why }
    }

    /// Polls `check` for up to `seconds`.
    static func eventually(_ seconds: Double = 10, _ check: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await check() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await check()
    }
}

/// The stock docker CLI against real runc containers of a runtime (root, runc, busybox).
@Suite(.serialized) struct ContainerCLITests {
    @Test func psInspectLogsInfoAndKill() async throws {
        try await ContainerLab.with(tasks: ["p1", "p2", "p3"]) { lab in
            _ = try await lab.start("p1", "echo line1; echo err1 >&2; echo line2; exec sleep 1000")
            let ended = try await lab.start("p2", "echo bye; exit 3")
            _ = await ended.process.wait()
            let n1 = lab.name("p1"), n2 = lab.name("p2")
            let id1 = NodeContainers.id(n1)
            let wrote = await ContainerLab.eventually { (await lab.rt.log("p1")).contains("line2") }
            let early = await lab.rt.log("p1")
            #expect(wrote, "p1's output: \(early)")

            let ps = try await lab.docker("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Image}} {{.Status}}")
            #expect(ps.succeeded, "\(ps.stderr)")
            #expect(ps.stdout.hasPrefix("\(id1) \(n1) mkt/busybox Up "), "\(ps.stdout)")
            #expect(!ps.stdout.contains(n2), "an ended container is listed only with -a: \(ps.stdout)")
            let all = try await lab.docker("ps", "-a", "--format", "{{.Names}}|{{.Status}}")
            #expect(all.stdout.contains("\(n2)|Exited (3) "), "\(all.stdout)")
            let byLabel = try await lab.docker("ps", "-a", "-q", "--filter", "label=com.docker.swarm.task.id=p2")
            #expect(byLabel.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == String(NodeContainers.id(n2).prefix(12)))
            let none = try await lab.docker("ps", "-q", "--filter", "label=test=other")
            #expect(none.succeeded && none.stdout.isEmpty, "\(none.stdout) \(none.stderr)")
            let refused = try await lab.docker("ps", "--filter", "ancestor=busybox")
            #expect(!refused.succeeded && refused.stderr.contains("invalid filter 'ancestor'"), "\(refused.stderr)")

            // By name and by a short id; the values are the runtime's.
            let p1 = try #require(await lab.rt.containers?.container("p1"))
            let inspect = try await lab.docker(
                "inspect", "--format",
                "{{.Name}} {{.State.Status}} {{.State.Running}} {{.State.Pid}} {{.Config.Hostname}} {{index .Config.Labels \"test\"}}",
                String(id1.prefix(8)))
            #expect(inspect.stdout == "/\(n1) running true \(p1.initPID) p1 cli\n", "\(inspect.stdout) \(inspect.stderr)")
            let exited = try await lab.docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{json .Config.Cmd}}", n2)
            #expect(exited.stdout == "exited 3 [\"sh\",\"-c\",\"echo bye; exit 3\"]\n", "\(exited.stdout) \(exited.stderr)")
            let missing = try await lab.docker("inspect", "nosuch")
            #expect(!missing.succeeded && missing.stderr.contains("No such object: nosuch"), "\(missing.stderr)")

            // Mounts as the driver made them: a named volume, a read-only bind, a tmpfs.
            try FileManager.default.createDirectory(atPath: lab.dir + "/bound", withIntermediateDirectories: true)
            _ = try await lab.start(
                "p3", "exec sleep 1000",
                mounts: [
                    ContainerMount(kind: .volume, source: "mkcli-data", target: "/data"),
                    ContainerMount(kind: .bind, source: lab.dir + "/bound", target: "/b", readOnly: true),
                    ContainerMount(kind: .tmpfs, target: "/t"),
                ])
            let mounts = try await lab.docker(
                "inspect", "--format", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Source}} {{.Destination}} {{.RW}};{{end}}", lab.name("p3"))
            #expect(
                mounts.stdout
                    == "volume mkcli-data \(lab.dir)/data/volumes/mkcli-data/_data /data true;bind  \(lab.dir)/bound /b false;tmpfs   /t true;\n",
                "\(mounts.stdout) \(mounts.stderr)")

            let logs = try await lab.docker("logs", n1)
            #expect(logs.stdout == "line1\nline2\n" && logs.stderr == "err1\n", "\(logs.stdout)|\(logs.stderr)")
            let tail = try await lab.docker("logs", "--tail", "1", "-t", n1)
            let p1Entries = try #require(await lab.rt.containers?.container("p1")).logEntries()
            // The last line the log holds (the two pipes interleave as they were read), with its time.
            let last = try #require(p1Entries.last)
            #expect(tail.stdout + tail.stderr == "\(last.time) \(last.log)", "\(tail.stdout)|\(tail.stderr)")

            let future = try await lab.docker("logs", "--since", "2099-01-01T00:00:00Z", n1)
            #expect(future.succeeded && future.stdout.isEmpty && future.stderr.isEmpty, "\(future.stdout)|\(future.stderr)")
            let past = try await lab.docker("logs", "--since", "2000-01-01T00:00:00Z", n1)
            #expect(past.stdout == "line1\nline2\n", "\(past.stdout)|\(past.stderr)")

            let info = try await lab.docker("info", "--format", "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}}")
            #expect(info.stdout == "3 2 1\n", "\(info.stdout) \(info.stderr)")

            let killed = try await lab.docker("kill", n1)
            #expect(killed.succeeded, "\(killed.stderr)")
            #expect(await ContainerLab.eventually { p1.process.current != .running })
            let after = try await lab.docker("ps", "-a", "--filter", "name=\(n1)", "--format", "{{.Status}}")
            #expect(after.stdout.hasPrefix("Exited (137) "), "\(after.stdout)")
            let again = try await lab.docker("kill", n1)
            #expect(!again.succeeded && again.stderr.contains("is not running"), "\(again.stderr)")
        }
    }

    /// `docker ps` and `docker inspect` show health as dockerd does, from real probes' results.
    @Test func psAndInspectShowHealth() async throws {
        try await ContainerLab.with(tasks: ["h1"]) { lab in
            _ = try await lab.start("h1", "exec sleep 1000")
            let check = try #require(HealthCheck(test: ["CMD-SHELL", "echo probed; test -e /tmp/ok"]))
            var state = HealthState()
            lab.health.set("h1", state)
            let starting = try await lab.docker("ps", "--format", "{{.Status}}")
            #expect(starting.stdout.hasSuffix(" (health: starting)\n"), "\(starting.stdout)")
            state.record(try #require(await lab.rt.probe("h1", check)), retries: 1, inStartPeriod: false)
            lab.health.set("h1", state)
            let sick = try await lab.docker("ps", "--format", "{{.Status}}")
            #expect(sick.stdout.hasSuffix(" (unhealthy)\n"), "\(sick.stdout)")
            _ = try await lab.rt.exec("h1", ExecRequest(args: ["touch", "/tmp/ok"])).collect()
            state.record(try #require(await lab.rt.probe("h1", check)), retries: 1, inStartPeriod: false)
            lab.health.set("h1", state)
            let well = try await lab.docker("ps", "--format", "{{.Status}}")
            #expect(well.stdout.hasSuffix(" (healthy)\n"), "\(well.stdout)")
            // `ps --filter health=`: the check's state, as dockerd filters it.
            #expect(try await lab.docker("ps", "-q", "--filter", "health=healthy").stdout.count == 13)
            #expect(try await lab.docker("ps", "-q", "--filter", "health=unhealthy").stdout.isEmpty)
            #expect(try await lab.docker("ps", "-q", "--filter", "health=none").stdout.isEmpty)
            let bad = try await lab.docker("ps", "--filter", "health=sick")
            #expect(bad.stderr.contains("Unrecognised filter value for health: sick"), "\(bad.stderr)")
            let inspect = try await lab.docker(
                "inspect", "--format", "{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{len .State.Health.Log}}", lab.name("h1"))
            #expect(inspect.stdout == "healthy 0 2\n", "\(inspect.stdout)\(inspect.stderr)")
            let log = try await lab.docker(
                "inspect", "--format", "{{range .State.Health.Log}}{{.ExitCode}}:{{.Output}}{{end}}", lab.name("h1"))
            #expect(log.stdout == "1:probed\n0:probed\n\n", "\(log.stdout)")
        }
    }

    @Test func logsFollowEndsWithTheContainer() async throws {
        try await ContainerLab.with(tasks: ["f1"]) { lab in
            _ = try await lab.start("f1", "for i in 1 2 3; do echo n$i; sleep 0.4; done")
            let began = ContinuousClock.now
            let follow = try await lab.docker("logs", "-f", lab.name("f1"))
            #expect(follow.succeeded, "\(follow.stderr)")
            #expect(follow.stdout == "n1\nn2\nn3\n", "\(follow.stdout)")
            #expect(ContinuousClock.now - began < .seconds(20))
            let wait = try await lab.docker("wait", lab.name("f1"))
            #expect(wait.stdout == "0\n", "\(wait.stdout) \(wait.stderr)")
        }
    }

    @Test func execPipedTTYAndDetached() async throws {
        try await ContainerLab.with(tasks: ["e1"]) { lab in
            _ = try await lab.start("e1", "exec sleep 1000")
            let n = lab.name("e1")
            let piped = try await lab.sh("printf 'hi\\nthere\\n' | $DOCKER exec -i \(n) cat")
            #expect(piped.succeeded && piped.stdout == "hi\nthere\n", "\(piped.stdout)|\(piped.stderr)")
            let streams = try await lab.docker("exec", n, "sh", "-c", "echo out; echo err >&2; exit 3")
            #expect(streams.status == 3, "the exit code comes through: \(streams.status) \(streams.stderr)")
            #expect(streams.stdout == "out\n" && streams.stderr == "err\n", "\(streams.stdout)|\(streams.stderr)")
            let env = try await lab.docker("exec", "-e", "A=1", "-w", "/tmp", "-u", "root", n, "sh", "-c", "echo $A; pwd; id -u")
            #expect(env.stdout == "1\n/tmp\n0\n", "\(env.stdout) \(env.stderr)")

            // Under a pty (script gives the CLI one): a TTY exec, its size and its exit code.
            let cli = "docker --config \(lab.dockerConfig) -H unix://\(lab.socket)"
            let tty = try await lab.shell([
                "script", "-qec", "stty rows 30 cols 90; \(cli) exec -it \(n) sh -c 'tty; stty size; echo done-tty; exit 5'", "/dev/null",
            ])
            #expect(tty.status == 5, "\(tty.status) \(tty.stdout) \(tty.stderr)")
            #expect(tty.stdout.contains("/dev/pts/") && tty.stdout.contains("30 90") && tty.stdout.contains("done-tty"), "\(tty.stdout)")

            // 20 MiB through the hijacked stream, none of it lost to a slower reader.
            let big = try await lab.sh("$DOCKER exec \(n) sh -c 'dd if=/dev/zero bs=1048576 count=20 2>/dev/null | tr \"\\\\0\" a' | wc -c")
            #expect(big.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "20971520", "\(big.stdout) \(big.stderr)")
            // A client that stops reading early does not hold the process.
            _ = try await lab.sh("$DOCKER exec \(n) sh -c 'yes | head -c 30000000; echo finished > /tmp/early' | head -c 10")
            #expect(
                try await ContainerLab.eventually(20) {
                    try await lab.docker("exec", n, "cat", "/tmp/early").stdout == "finished\n"
                })

            let detached = try await lab.docker("exec", "-d", n, "sh", "-c", "sleep 0.2; echo later > /tmp/d")
            #expect(detached.succeeded && detached.stdout.isEmpty, "\(detached.stdout) \(detached.stderr)")
            #expect(
                try await ContainerLab.eventually {
                    try await lab.docker("exec", n, "cat", "/tmp/d").stdout == "later\n"
                })

            let stopped = try await lab.docker("exec", "nosuch", "true")
            #expect(!stopped.succeeded && stopped.stderr.contains("No such container: nosuch"), "\(stopped.stderr)")
            _ = await lab.rt.stop("e1", grace: .seconds(1))
            let refused = try await lab.docker("exec", n, "true")
            #expect(!refused.succeeded && refused.stderr.contains("is not running"), "\(refused.stderr)")
        }
    }

    @Test func signalsAndBoundedExecInstances() async throws {
        try await ContainerLab.with(tasks: ["k1"]) { lab in
            _ = try await lab.start("k1", "trap 'echo got-hup' HUP; echo ready; while true; do sleep 0.05; done")
            let n = lab.name("k1")
            #expect(await ContainerLab.eventually { (await lab.rt.log("k1")).contains("ready") })
            let hup = try await lab.docker("kill", "--signal", "HUP", n)
            #expect(hup.succeeded, "\(hup.stderr)")
            #expect(await ContainerLab.eventually { (await lab.rt.log("k1")).contains("got-hup") })
            let bad = try await lab.docker("kill", "--signal", "NOPE", n)
            #expect(!bad.succeeded && bad.stderr.contains("Invalid signal"), "\(bad.stderr)")

            // An exec's Pid is its process's, as the host sees it.
            let probe = NodeContainers(runtime: lab.rt)
            let sleeper = try await probe.createExec(n, ExecCreateRequest(Cmd: ["sleep", "3"]))
            #expect(try await probe.startExec(sleeper, ExecStartRequest(Detach: true)) == nil)
            var pid: Int32 = 0
            for _ in 0..<100 where pid == 0 {
                pid = try await probe.inspectExec(sleeper).Pid
                try await Task.sleep(for: .milliseconds(20))
            }
            let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
            #expect(pid > 0 && comm == "sleep\n", "pid \(pid): \(comm)")
            #expect(try await probe.inspectExec(sleeper).Running)

            // Exec instances: at most two kept, an ended one forgotten once its lifetime is over.
            let api = NodeContainers(runtime: lab.rt, execLifetime: .milliseconds(200), maxExecs: 2)
            let done = try await api.createExec(n, ExecCreateRequest(Cmd: ["true"]))
            #expect(try await api.startExec(done, ExecStartRequest(Detach: true)) == nil)
            let ended = await ContainerLab.eventually { (try? await api.inspectExec(done))?.ExitCode == 0 }
            #expect(ended)
            let waiting = try await api.createExec(n, ExecCreateRequest(Cmd: ["true"]))
            try await Task.sleep(for: .milliseconds(300))
            let third = try await api.createExec(n, ExecCreateRequest(Cmd: ["true"]))
            await #expect(throws: EngineError.noSuchExec(done)) { try await api.inspectExec(done) }
            await #expect(throws: EngineError.self) { try await api.createExec(n, ExecCreateRequest(Cmd: ["true"])) }
            let kept = (try await api.inspectExec(waiting), try await api.inspectExec(third))
            #expect(!kept.0.Running && kept.0.ExitCode == nil && kept.1.ExitCode == nil)
        }
    }
}
