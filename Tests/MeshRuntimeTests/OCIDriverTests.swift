import Foundation
import MeshKernel
import MeshTestbed
import Testing
@testable import MeshRuntime

/// The image store a test stands in for: one busybox-static rootfs for every task, with the
/// image config the test gives.
struct TestImages: RootfsProvider {
    let rootfs: String
    let configs: [String: ImageRunConfig]
    func prepare(image: String, task: String) async throws(RuntimeError) -> PreparedImage {
        guard let c = configs[image] else { throw .unsupported("test image store has no \(image)") }
        return PreparedImage(reference: image, rootfs: rootfs, config: c)
    }
    func release(task: String) async {}
}

/// A runtime with the OCI driver on a busybox rootfs, a peer namespace to ping, and a cleanup
/// that runs whatever the test did and reports what it had to remove.
struct OCILab {
    static let service = "mktoci"
    let dir: String
    let rootfs: String
    let node: String
    let peer: String
    let rt: TaskRuntime
    let runc: Runc

    static func make() throws -> OCILab {
        guard getuid() == 0 else { throw RootNeeded() }
        guard (try? Exec.run(["runc", "--version"]))?.succeeded == true else { throw RuncMissing() }
        let tag = "\(getpid())\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        let dir = "/tmp/mkt-oci-\(tag)"
        do { return try make(dir: dir, tag: tag) } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    private static func make(dir: String, tag: String) throws -> OCILab {
        let rootfs = dir + "/rootfs"
        let fm = FileManager.default
        for sub in ["bin", "etc", "home/app", "work", "tmp", "proc", "sys", "dev"] {
            try fm.createDirectory(atPath: "\(rootfs)/\(sub)", withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: "/bin/busybox", toPath: rootfs + "/bin/busybox")
        for name in try Exec.check(["/bin/busybox", "--list"]).split(separator: "\n") where name != "busybox" {
            try fm.createSymbolicLink(atPath: "\(rootfs)/bin/\(name)", withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n".write(
            toFile: rootfs + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\napp:x:1000:\nextra:x:2000:app\n".write(toFile: rootfs + "/etc/group", atomically: true, encoding: .utf8)
        let node = "mktoci\(getpid())"
        let images = TestImages(
            rootfs: rootfs,
            configs: [
                "mkt/busybox": ImageRunConfig(cmd: ["sh"], env: ["FROM_IMAGE=yes", "PATH=/bin"]),
                "mkt/quitter": ImageRunConfig(cmd: ["sh"], env: ["PATH=/bin"], stopSignal: "SIGUSR1"),
            ])
        let rt = try TaskRuntime(nodeID: node, dataRoot: dir + "/data", meshd: DataplaneLab.locateMeshd(), images: images)
        let peer = "mkt-ocipeer-\(tag)"
        try Exec.check(["ip", "netns", "add", peer])
        return OCILab(dir: dir, rootfs: rootfs, node: node, peer: peer, rt: rt, runc: Runc(root: dir + "/data/runc"))
    }

    func launch(
        _ id: String, image: String = "mkt/busybox", _ args: [String], env: [String: String] = [:], user: String? = nil,
        workdir: String? = nil, resources: TaskResources = .init()
    ) -> TaskLaunch {
        TaskLaunch(
            id: id, image: image, args: args, env: env,
            container: ContainerOptions(
                serviceID: "svc\(id)", serviceName: Self.service, slot: "1", args: args, user: user, workdir: workdir,
                labels: ["test": "oci"], resources: resources))
    }

    /// Prepares (namespace made), links the task namespace to the peer with a veth
    /// (10.99.0.2 ↔ 10.99.0.1, both ends in namespaces of this test), then launches.
    func start(_ t: TaskLaunch, link: Bool = false) async throws -> TaskRuntime.Running {
        let ns = try await rt.prepare(t)
        if link {
            try Exec.check(["ip", "-n", peer, "link", "add", "p0", "type", "veth", "peer", "name", "eth0", "netns", ns])
            try Exec.check(["ip", "-n", peer, "addr", "add", "10.99.0.1/24", "dev", "p0"])
            try Exec.check(["ip", "-n", peer, "link", "set", "p0", "up"])
            try Exec.check(["ip", "-n", ns, "addr", "add", "10.99.0.2/24", "dev", "eth0"])
            try Exec.check(["ip", "-n", ns, "link", "set", "eth0", "up"])
        }
        return try await rt.launch(t)
    }

    /// Everything the test made goes; returns what was still there after the runtime's own
    /// removal (a failure: the runtime leaked it).
    func cleanup(tasks: [String]) async -> [String] {
        for id in tasks { await rt.remove(id) }
        var leaked: [String] = []
        for id in runc.list() {
            leaked.append("runc container \(id)")
            try? runc.delete(id)
        }
        let global = (try? Exec.run(["runc", "list", "-q"]).stdout) ?? ""
        for id in global.split(separator: "\n") where id.hasPrefix(Self.service) {
            leaked.append("runc container \(id) in /run/runc")
            _ = try? Exec.run(["runc", "delete", "--force", String(id)])
        }
        let prefix = TaskRuntime.namespacePrefix(nodeID: node)
        for ns in NetworkNamespace.list() where ns.hasPrefix(prefix) {
            leaked.append("namespace \(ns)")
            TaskRuntime.removeNamespace(ns)
        }
        let bundles = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/data/containers")) ?? []
        leaked += bundles.map { "bundle \($0)" }
        _ = try? Exec.run(["ip", "netns", "delete", peer])
        try? FileManager.default.removeItem(atPath: dir)
        return leaked
    }

    /// Runs `body`, then the cleanup whether it threw or not; a leak fails the test.
    static func with(tasks: [String], _ body: (OCILab) async throws -> Void) async throws {
        let lab = try make()
        var failure: (any Error)?
        do { try await body(lab) } catch { failure = error }
        let leaked = await lab.cleanup(tasks: tasks)
        #expect(leaked.isEmpty, "left behind: \(leaked)")
        if let failure { throw failure }
    }
}

struct RuncMissing: Error, CustomStringConvertible { var description: String { "runc is not installed (scripts/setup installs it)" } }

/// Real runc containers in real namespaces (root).
@Suite(.serialized) struct OCIDriverTests {
    @Test func aContainerRunsInTheTaskNamespaceAsAsked() async throws {
        try await OCILab.with(tasks: ["c1hello"]) { lab in
            let script = """
                hostname; echo "v=$MYVAR img=$FROM_IMAGE home=$HOME"; pwd; id -u; id -g; id -G
                cat /etc/resolv.conf | head -1; grep -c c1hello /etc/hosts; exit 3
                """
            let r = try await lab.start(lab.launch("c1hello", ["sh", "-c", script], env: ["MYVAR": "42"], user: "app", workdir: "/work"))
            #expect(r.driver == "oci")
            let end = await r.process.wait()
            let log = await lab.rt.log("c1hello")
            #expect(end == .exited(3), "the container's exit code: \(log)")
            let lines = log.split(separator: "\n").map(String.init)
            #expect(
                lines == ["c1hello", "v=42 img=yes home=/home/app", "/work", "1000", "1000", "1000 2000", "nameserver 127.0.0.11", "1"],
                "\(lines)")
            let c = try #require(await lab.rt.containers?.container("c1hello"))
            #expect(c.name == "mktoci.1.c1hello")
            let spec = try JSONDecoder().decode(RuntimeSpec.self, from: Data(contentsOf: URL(fileURLWithPath: c.bundle + "/config.json")))
            #expect(spec.annotations["com.docker.swarm.task.name"] == "mktoci.1.c1hello" && spec.annotations["test"] == "oci")
        }
    }

    /// The task namespace is the container's: its veth, its address, its peer.
    @Test func aContainerPingsThroughTheTaskNamespace() async throws {
        try await OCILab.with(tasks: ["c2ping"]) { lab in
            let r = try await lab.start(
                lab.launch(
                    "c2ping",
                    [
                        "sh", "-c",
                        "ip -o -4 addr show eth0 | grep -o '10.99.0.2/24'; ping -c 1 -W 5 10.99.0.1 | grep -c 'bytes from 10.99.0.1'",
                    ]),
                link: true)
            let end = await r.process.wait()
            let log = await lab.rt.log("c2ping")
            #expect(end == .exited(0), "\(log)")
            #expect(log == "10.99.0.2/24\n1\n", "\(log)")
        }
    }

    @Test func stopSendsTheStopSignalThenKillsAfterTheGrace() async throws {
        try await OCILab.with(tasks: ["s1deaf", "s2polite"]) { lab in
            // PID 1 with TERM ignored: only SIGKILL ends it, after the grace period.
            let deaf = try await lab.start(lab.launch("s1deaf", ["sh", "-c", "trap '' TERM; echo up; while true; do sleep 0.05; done"]))
            // The image's stop signal (USR1) is what it waits for.
            let polite = try await lab.start(
                lab.launch(
                    "s2polite", image: "mkt/quitter",
                    ["sh", "-c", "trap 'echo got USR1; exit 0' USR1; echo up; while true; do sleep 0.05; done"]))
            // The traps must be set before the signals go: on a loaded machine a shell can take seconds to get there
            // (a TERM before the trap ends it with 143, a USR1 with 138).
            for id in ["s1deaf", "s2polite"] {
                for _ in 0..<2000 where !(await lab.rt.log(id)).contains("up") { try await Task.sleep(for: .milliseconds(10)) }
                #expect(await lab.rt.log(id).contains("up"), "\(id) never said up")
            }
            let began = ContinuousClock.now
            #expect(await lab.rt.stop("s1deaf", grace: .seconds(1)) == .exited(137))
            let took = ContinuousClock.now - began
            // At least the grace; well under the 10 s default (each runc verb is slow on a loaded machine).
            #expect(took >= .seconds(1) && took < .seconds(8), "\(took)")
            #expect(deaf.process.current == .exited(137))
            let quick = ContinuousClock.now
            #expect(await lab.rt.stop("s2polite", grace: .seconds(10)) == .exited(0))
            #expect(ContinuousClock.now - quick < .seconds(8))
            #expect(await lab.rt.log("s2polite").contains("got USR1"))
            #expect(polite.process.current == .exited(0))
        }
    }

    @Test func limitsAreTheContainersCgroup() async throws {
        try await OCILab.with(tasks: ["m1limit"]) { lab in
            let r = try await lab.start(
                lab.launch("m1limit", ["sleep", "30"], resources: TaskResources(memoryBytes: 64 << 20, nanoCPUs: 500_000_000)))
            let cgroups = try String(contentsOfFile: "/proc/\(r.pid)/cgroup", encoding: .utf8)
            /// The container's directory in the v1 hierarchy holding `controller` (mounted under its controllers' names).
            func path(_ controller: String) throws -> String {
                let f = try #require(
                    cgroups.split(separator: "\n").map { $0.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false) }.first {
                        $0.count == 3 && $0[1].split(separator: ",").contains(Substring(controller))
                    })
                return "/sys/fs/cgroup/\(f[1])\(f[2])"
            }
            let memory = try path("memory")
            #expect(memory.hasSuffix("/meshd/mktoci.1.m1limit"), "\(memory)")
            let limit = try String(contentsOfFile: "\(memory)/memory.limit_in_bytes", encoding: .utf8)
            #expect(limit.trimmingCharacters(in: .whitespacesAndNewlines) == "\(64 << 20)")
            let quota = try String(contentsOfFile: "\(try path("cpu"))/cpu.cfs_quota_us", encoding: .utf8)
            #expect(quota.trimmingCharacters(in: .whitespacesAndNewlines) == "50000")
            // And from inside, through the container's own cgroup mount.
            let inside = try await lab.rt.exec("m1limit", ExecRequest(args: ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]))
                .collect()
            #expect(inside.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(64 << 20)", "\(inside)")
        }
    }

    @Test func logsKeepOrderAndStreams() async throws {
        try await OCILab.with(tasks: ["l1logs"]) { lab in
            let script = "echo out1; sleep 0.05; echo err1 >&2; sleep 0.05; echo out2; sleep 0.05; printf 'err2' >&2"
            let r = try await lab.start(lab.launch("l1logs", ["sh", "-c", script]))
            #expect(await r.process.wait() == .exited(0))
            let c = try #require(await lab.rt.containers?.container("l1logs"))
            let entries = c.logEntries()
            #expect(entries.map(\.log) == ["out1\n", "err1\n", "out2\n", "err2"], "\(entries)")
            #expect(entries.map(\.stream) == [.stdout, .stderr, .stdout, .stderr])
            #expect(entries.map(\.time) == entries.map(\.time).sorted() && entries.allSatisfy { $0.time.hasSuffix("Z") })
        }
    }

    @Test func execWithoutATTYKeepsStreamsAndExitCode() async throws {
        try await OCILab.with(tasks: ["e1exec"]) { lab in
            _ = try await lab.start(lab.launch("e1exec", ["sleep", "30"], env: ["FROMTASK": "t"]))
            let out = try await lab.rt.exec(
                "e1exec",
                ExecRequest(args: ["sh", "-c", "echo out $FROMTASK $X; hostname; echo err >&2; id -u; exit 4"], env: ["X=x"], user: "app")
            ).collect()
            #expect(out.stdout == "out t x\ne1exec\n1000\n", "\(out)")
            #expect(out.stderr == "err\n")
            #expect(out.exitCode == 4)
            // stdin through a pipe, EOF by closing it.
            let cat = try await lab.rt.exec("e1exec", ExecRequest(args: ["sh", "-c", "cat; echo done"], stdin: true))
            try cat.write(Array("from-stdin\n".utf8))
            cat.close(cat.stdin)
            let echoed = await cat.collect()
            #expect(echoed.stdout == "from-stdin\ndone\n" && echoed.exitCode == 0, "\(echoed)")
            // runc's own failure: its exit status and its message on stderr.
            let missing = try await lab.rt.exec("e1exec", ExecRequest(args: ["/no/such/binary"])).collect()
            #expect(missing.exitCode == 255 && missing.stderr.contains("no such file"), "\(missing)")
        }
    }

    @Test func aHealthProbeRunsInTheContainerAndIsKilledAtItsTimeout() async throws {
        try await OCILab.with(tasks: ["h1probe"]) { lab in
            _ = try await lab.start(lab.launch("h1probe", ["sleep", "60"], env: ["FROMTASK": "t"]))
            // In the container: its file system, its environment, its hostname.
            let flag = try #require(HealthCheck(test: ["CMD-SHELL", "echo $FROMTASK $(hostname); test -e /tmp/ok"]))
            let failed = try #require(await lab.rt.probe("h1probe", flag))
            #expect(failed.exitCode == 1 && failed.output == "t h1probe\n", "\(failed)")
            _ = try await lab.rt.exec("h1probe", ExecRequest(args: ["touch", "/tmp/ok"])).collect()
            let passed = try #require(await lab.rt.probe("h1probe", flag))
            #expect(passed.exitCode == 0, "\(passed)")
            let slow = try #require(HealthCheck(test: ["CMD", "sleep", "30"], timeoutNanos: 500_000_000))
            let began = ContinuousClock.now
            let timedOut = try #require(await lab.rt.probe("h1probe", slow))
            #expect(ContinuousClock.now - began < .seconds(5), "the probe outlived its timeout")
            #expect(timedOut.exitCode == -1 && timedOut.output.contains("exceeded timeout"), "\(timedOut)")
            // Killed, not left behind in the container.
            let left = try await lab.rt.exec("h1probe", ExecRequest(args: ["sh", "-c", "ps | grep -c '[s]leep 30'"])).collect()
            #expect(left.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(left)")
        }
    }

    @Test func execWithATTYSeesItsSize() async throws {
        try Subreaper.become()  // the test binary's own process, as the daemon's at startup
        try await OCILab.with(tasks: ["y1tty"]) { lab in
            _ = try await lab.start(lab.launch("y1tty", ["sleep", "30"]))
            let s = try await lab.rt.exec("y1tty", ExecRequest(args: ["sh"], tty: ExecTerminal(rows: 24, columns: 80)))
            #expect(s.console != nil && s.stdout == nil)
            try s.resize(ExecTerminal(rows: 40, columns: 100))
            try s.write(Array("stty size; tty; exit 7\n".utf8))
            let out = await s.collect()
            #expect(out.exitCode == 7, "\(out)")
            #expect(out.stdout.contains("40 100"), "\(out.stdout)")
            #expect(out.stdout.contains("/dev/pts/"), "\(out.stdout)")
        }
    }

    @Test func catalogImagesStayHostProcessesAndCannotExec() async throws {
        try await OCILab.with(tasks: ["p1proc", "u1unknown"]) { lab in
            let r = try await lab.rt.start(TaskLaunch(id: "p1proc", image: "busybox", args: ["sleep", "30"]))
            #expect(r.driver == "process")
            await #expect(throws: RuntimeError.self) { try await lab.rt.exec("p1proc", ExecRequest(args: ["true"])) }
            // Not in the catalog: the image store's answer is the task's error, and nothing is made.
            await #expect(throws: RuntimeError.self) { try await lab.rt.start(lab.launch("u1unknown", image: "nginx", ["x"])) }
            #expect(!NetworkNamespace.exists(named: lab.rt.namespaceName("u1unknown")))
        }
    }

    @Test func aBadCommandFailsTheLaunchWithRuncsReason() async throws {
        try await OCILab.with(tasks: ["b1bad"]) { lab in
            let t = lab.launch("b1bad", ["/no/such/binary"])
            do {
                let r = try await lab.start(t)
                // runc may report the exec failure after the init exists: then it is the exit code.
                let end = await r.process.wait()
                #expect(end != .exited(0), "\(end)")
            } catch let e as RuntimeError {
                #expect("\(e)".contains("runc run"), "\(e)")
            }
        }
    }

    /// A task whose container ended starts again under the same name; its log goes on.
    @Test func anEndedContainerRelaunches() async throws {
        try await OCILab.with(tasks: ["r1again"]) { lab in
            let t = lab.launch("r1again", ["sh", "-c", "echo run"])
            let first = try await lab.start(t)
            #expect(await first.process.wait() == .exited(0))
            let second = try await lab.rt.launch(t)
            #expect(await second.process.wait() == .exited(0))
            #expect(await lab.rt.log("r1again") == "run\nrun\n")
        }
    }

    /// A daemon killed with containers running: the next one on the same data root deletes them.
    @Test func leftoverContainersOfAPreviousLifeAreDeleted() async throws {
        try await OCILab.with(tasks: ["z1left"]) { lab in
            let r = try await lab.start(lab.launch("z1left", ["sleep", "60"]))
            #expect(lab.runc.list() == ["mktoci.1.z1left"])
            let images = TestImages(rootfs: lab.rootfs, configs: [:])
            let next = try TaskRuntime(nodeID: lab.node, dataRoot: lab.dir + "/data", meshd: DataplaneLab.locateMeshd(), images: images)
            #expect(await next.removeLeftovers() == 2, "the container and its namespace")
            #expect(lab.runc.list().isEmpty)
            #expect(await r.process.wait() == .exited(137), "runc run ends with its container")
            #expect(!FileManager.default.fileExists(atPath: lab.dir + "/data/containers/mktoci.1.z1left"))
        }
    }

    /// Start request → listening, for both drivers, interleaved in one run (median of 20 each).
    @Test func startLatencyOCIAgainstProcess() async throws {
        let ids = (0..<20).flatMap { ["lp\($0)x", "lo\($0)x"] }
        try await OCILab.with(tasks: ids) { lab in
            var process: [Duration] = [], oci: [Duration] = []
            var ociPrepare: [Duration] = [], ociLaunch: [Duration] = []
            for i in 0..<20 {
                for kind in ["process", "oci"] {
                    let id = kind == "process" ? "lp\(i)x" : "lo\(i)x"
                    let t =
                        kind == "process"
                        ? TaskLaunch(id: id, image: "busybox", args: ["httpd", "-f", "-p", "8000"])
                        : lab.launch(id, ["httpd", "-f", "-p", "8000"])
                    let began = ContinuousClock.now
                    _ = try await lab.rt.prepare(t)
                    let prepared = ContinuousClock.now
                    let r = try await lab.rt.launch(t)
                    if kind == "oci" {
                        ociPrepare.append(prepared - began)
                        ociLaunch.append(ContinuousClock.now - prepared)
                    }
                    let path = "/run/netns/\(r.namespace)"
                    while !TaskReadiness.isListening(pid: r.pid, namespacePath: path) {
                        if r.process.current != .running || ContinuousClock.now - began > .seconds(10) {
                            let log = await lab.rt.log(id)
                            Issue.record("\(id) never listened (\(r.process.current)): \(log)")
                            break
                        }
                        try await Task.sleep(for: .microseconds(500))
                    }
                    let took = ContinuousClock.now - began
                    if kind == "process" { process.append(took) } else { oci.append(took) }
                    // httpd as PID 1 ignores TERM: no need to wait out remove()'s grace.
                    _ = await lab.rt.stop(id, grace: .milliseconds(50))
                    await lab.rt.remove(id)
                }
            }
            func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
            let p = ms(process.sorted()[10]), o = ms(oci.sorted()[10])
            print(String(format: "start latency (start → listening), median of 20: process %.1f ms, oci %.1f ms, ratio %.2f", p, o, o / p))
            print(
                String(
                    format: "oci medians: prepare (namespace, files) %.1f ms, launch (bundle, runc run → init pid) %.1f ms",
                    ms(ociPrepare.sorted()[10]), ms(ociLaunch.sorted()[10])))
            #expect(o < 2000 && p < 2000)
        }
    }
}
