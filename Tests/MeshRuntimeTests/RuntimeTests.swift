import Foundation
import MeshKernel
import MeshTestbed
import Testing
@testable import MeshRuntime

@Suite struct ImageCatalogTests {
    @Test func namesNormalizeAndBuiltInsResolve() throws {
        #expect(ImageCatalog.normalize("docker.io/library/busybox:1.36@sha256:abc") == "busybox")
        #expect(ImageCatalog.normalize("jwilder/whoami:latest") == "jwilder/whoami")
        #expect(ImageCatalog.normalize("registry:5000/team/app") == "registry:5000/team/app")
        let c = try ImageCatalog(dataRoot: "/nonexistent", meshd: "/usr/bin/meshd")
        #expect(try c.command(image: "traefik/whoami", args: []) == ["/usr/bin/meshd", "whoami", "--port", "80"])
        #expect(try c.command(image: "alpine", args: ["ping", "x"]) == ["/bin/busybox", "ping", "x"])
        #expect(try c.command(image: "busybox", args: []) == ["/bin/busybox", "sh"])
    }

    @Test func anUnmappedImageSaysWhereToMapIt() throws {
        let c = try ImageCatalog(dataRoot: "/var/lib/meshd", meshd: "meshd")
        #expect(throws: ImageCatalog.Failure.unmapped(image: "nginx:1.27", catalog: "/var/lib/meshd/images.json")) {
            try c.command(image: "nginx:1.27", args: [])
        }
        #expect("\(ImageCatalog.Failure.unmapped(image: "nginx", catalog: "/d/images.json"))".contains("not in this node's image catalog"))
    }

    @Test func userMappingsComeFromTheDataRoot() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mkt-catalog-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #"{"nginx": ["/usr/sbin/nginx", "-g", "daemon off;"]}"#.write(toFile: dir + "/images.json", atomically: true, encoding: .utf8)
        let c = try ImageCatalog(dataRoot: dir, meshd: "meshd")
        #expect(try c.command(image: "nginx:latest", args: []) == ["/usr/sbin/nginx", "-g", "daemon off;"])
        // `--no-builtin-images`: busybox and whoami are left to the registry; images.json still maps.
        let plain = try ImageCatalog(dataRoot: dir, meshd: "meshd", builtins: false)
        #expect(try plain.command(image: "nginx", args: ["-t"]) == ["/usr/sbin/nginx", "-g", "daemon off;", "-t"])
        for image in ["busybox", "alpine:3.10", "traefik/whoami"] {
            #expect(throws: ImageCatalog.Failure.unmapped(image: image, catalog: dir + "/images.json")) {
                try plain.command(image: image, args: [])
            }
        }
        try "{not json".write(toFile: dir + "/images.json", atomically: true, encoding: .utf8)
        #expect(throws: ImageCatalog.Failure.self) { try ImageCatalog(dataRoot: dir, meshd: "meshd") }
    }
}

/// Real processes in real namespaces (root).
@Suite(.serialized) struct TaskRuntimeTests {
    static func runtime() throws -> (TaskRuntime, String) {
        guard getuid() == 0 else { throw RootNeeded() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "mkt-runtime-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        ).path
        let meshd = DataplaneLab.locateMeshd()
        return (try TaskRuntime(nodeID: "mktrt\(getpid())", dataRoot: dir, meshd: meshd), dir)
    }

    @Test func aTaskHasItsOwnHostnameNetworkAndResolvConf() async throws {
        let (rt, dir) = try Self.runtime()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = TaskLaunch(
            id: "t1abc", image: "busybox",
            args: ["sh", "-c", "hostname; cat /etc/resolv.conf; cat /proc/net/dev | tail -n +3 | cut -d: -f1"])
        let r = try await rt.start(t)
        #expect(await r.process.wait() == .exited(0))
        let log = await rt.log("t1abc")
        let lines = log.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.first == "t1abc")
        #expect(lines.contains("nameserver 127.0.0.11"))
        #expect(lines.last == "lo", "only lo in a fresh task namespace: \(log)")
        #expect(NetworkNamespace.exists(named: r.namespace))
        await rt.remove("t1abc")
        #expect(!NetworkNamespace.exists(named: r.namespace))
        #expect(!FileManager.default.fileExists(atPath: "/etc/netns/\(r.namespace)"))
    }

    @Test func whoamiAnswersWithTheTaskIDAndStops() async throws {
        let (rt, dir) = try Self.runtime()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await rt.start(TaskLaunch(id: "web1xyz", image: "jwilder/whoami"))
        defer { Task { await rt.remove("web1xyz") } }
        var answer = ""
        for _ in 0..<300 where !answer.contains("I'm") {
            try await Task.sleep(for: .milliseconds(100))
            answer =
                (try? Exec.run(["ip", "netns", "exec", r.namespace, "curl", "-s", "--max-time", "1", "http://127.0.0.1:8000/"]).stdout)
                ?? ""
        }
        #expect(answer.hasPrefix("I'm web1xyz"), "\(answer)")
        let end = await rt.stop("web1xyz", grace: .seconds(5))
        #expect(end != nil && end != .running)
        await rt.remove("web1xyz")
    }

    /// Readiness is the task's own listener: not the embedded DNS server's sockets at 127.0.0.11,
    /// and not the node's listeners before the task's process has entered its namespace.
    @Test func aTaskIsReadyOnceItListens() async throws {
        let (rt, dir) = try Self.runtime()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let id = "ready1q"
        _ = try await rt.prepare(TaskLaunch(id: id, image: "busybox"))
        let path = "/run/netns/\(rt.namespaceName(id))"
        // Stand-ins for the resolver's sockets, which the agent binds in every task namespace.
        let script = """
            import socket, time
            t = socket.socket(); t.bind(("127.0.0.11", 53)); t.listen()
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.11", 53))
            time.sleep(1)
            s = socket.socket(); s.bind(("0.0.0.0", 9000)); s.listen()
            time.sleep(60)
            """
        let dns = try await rt.start(TaskLaunch(id: id, image: "busybox", args: ["sh", "-c", "exec /usr/bin/python3 -c \"$0\"", script]))
        defer { Task { await rt.remove(id) } }
        // The script binds port 9000 a second after it starts, which is after `start` returned.
        var early: [Bool] = [], late: [Bool] = []
        let start = ContinuousClock.now
        // Until a few samples after 2.5 s: on a loaded machine a 20 ms sleep can overrun by far.
        while late.count < 3 && ContinuousClock.now - start < .seconds(20) {
            let ready = TaskReadiness.isListening(pid: dns.process.pid, namespacePath: path)
            let at = ContinuousClock.now - start
            if at < .milliseconds(900) { early.append(ready) } else if at > .milliseconds(2500) { late.append(ready) }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(!early.isEmpty && early.allSatisfy { !$0 }, "not ready while only the DNS stand-ins listen: \(early)")
        #expect(!late.isEmpty && late.allSatisfy { $0 }, "ready once it listens on 9000: \(late)")
        // The daemon's own namespace has listeners of its own; a pid outside the task namespace never counts.
        #expect(!TaskReadiness.isListening(pid: getpid(), namespacePath: path))
        await rt.remove(id)
    }

    @Test func procNetLinesAreReadByStateAndAddress() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("mkt-procnet-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        try (header + "   0: 0B00007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(!TaskReadiness.hasSocket(in: file, state: "0A"))
        try (header + "   0: 00000000:1F40 00000000:0000 01 00000000:00000000 00:00000000 00000000     0        0 1 1\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(!TaskReadiness.hasSocket(in: file, state: "0A"), "an established connection is not a listener")
        #expect(TaskReadiness.hasSocket(in: file, state: nil))
        try (header + "   0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(TaskReadiness.hasSocket(in: file, state: "0A"))
        #expect(!TaskReadiness.hasSocket(in: "/nonexistent/tcp", state: nil))
    }

    @Test func anUnmappedImageFailsBeforeAnythingIsMade() async throws {
        let (rt, dir) = try Self.runtime()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        await #expect(throws: RuntimeError.self) { try await rt.start(TaskLaunch(id: "bad1", image: "nginx")) }
        #expect(!NetworkNamespace.exists(named: rt.namespaceName("bad1")))
    }
}

struct RootNeeded: Error, CustomStringConvertible { var description: String { "runtime tests start tasks in namespaces: run as root" } }
