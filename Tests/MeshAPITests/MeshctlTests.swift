import Foundation
import MeshAPI
import MeshTestbed
import Testing

struct MissingMeshctl: Error, CustomStringConvertible {
    let path: String
    var description: String { "meshctl not built at \(path): run swift build first (or set MESHCTL_BIN)" }
}

extension TestServer {
    static func meshctlPath() throws -> String {
        if let p = ProcessInfo.processInfo.environment["MESHCTL_BIN"] { return p }
        var d = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = d.appendingPathComponent("meshctl").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            d = d.deletingLastPathComponent()
        }
        throw MissingMeshctl(path: d.path)
    }

    /// The built meshctl against this server; `-H` given before the subcommand, as users type it.
    func meshctl(_ args: String...) async throws -> Exec.Output {
        try await offPool([try Self.meshctlPath(), "-H", "unix://\(socket)"] + args)
    }
}

/// meshctl against the same server as the docker CLI tests: tables like docker's, json, -q, errors.
@Suite("meshctl", .serialized)
struct MeshctlTests {
    @Test func swarmAndNodes() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        let inactive = try await t.meshctl("node", "ls")
        #expect(
            inactive.status == 1 && inactive.stderr.contains("Error response from daemon: This node is not a swarm manager."),
            "\(inactive.stderr)")
        let initOut = try await t.meshctl("swarm", "init", "--advertise-addr", "10.1.2.3")
        #expect(initOut.succeeded, "\(initOut.stderr)")
        let id = await t.engine.s.selfID
        let tokens = await t.engine.s.tokens
        #expect(initOut.stdout.contains("Swarm initialized: current node (\(id)) is now a manager."))
        #expect(initOut.stdout.contains("meshctl swarm join --token \(tokens.Worker) 10.1.2.3:2377"), "\(initOut.stdout)")

        let ls = try await t.meshctl("node", "ls")
        let lines = ls.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines.first == "ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION",
            "\(ls.stdout)")
        #expect(lines.last == "\(id) *   node1      Ready     Active         Leader           0.1.0", "\(ls.stdout)")
        #expect(try await t.meshctl("node", "ls", "-q").stdout == id + "\n")
        let json = try await t.meshctl("node", "ls", "--format", "json")
        let node = try EngineJSON.decoder().decode(Node.self, from: Data(json.stdout.utf8))
        #expect(node.ID == id && node.ManagerStatus?.Leader == true)

        #expect(try await t.meshctl("swarm", "join-token", "-q", "worker").stdout == tokens.Worker + "\n")
        let rotated = try await t.meshctl("swarm", "join-token", "--rotate", "manager")
        let newManager = await t.engine.s.tokens.Manager
        #expect(
            newManager != tokens.Manager && rotated.stdout.contains("meshctl swarm join --token \(newManager) 10.1.2.3:2377"),
            "\(rotated.stdout)")

        #expect(try await t.meshctl("node", "update", "--availability", "pause", "--label-add", "zone=b", "self").succeeded)
        let inspected = try await t.meshctl("node", "inspect", "self")
        let nodes = try EngineJSON.decoder().decode([Node].self, from: Data(inspected.stdout.utf8))
        #expect(nodes.first?.Spec.Availability == "pause" && nodes.first?.Spec.Labels?["zone"] == "b")
        #expect(try await t.meshctl("node", "inspect", "--pretty", "node1").stdout.contains(" Availability:\t\tPause"))
        let demote = try await t.meshctl("node", "demote", "node1")
        #expect(
            demote.status == 1
                && demote.stderr
                    == "Error response from daemon: rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm\n"
        )
        #expect(try await t.meshctl("node", "promote", "node1").stdout == "Node node1 promoted to a manager in the swarm.\n")
        #expect(try await t.meshctl("node", "rm", "nosuch").stderr == "Error response from daemon: node nosuch not found\n")
        #expect(try await t.meshctl("swarm", "leave").status == 1)
        #expect(try await t.meshctl("swarm", "leave", "--force").stdout == "Node left the swarm.\n")
    }

    @Test func networksAndServices() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.meshctl("swarm", "init")
        let net = try await t.meshctl("network", "create", "-d", "overlay", "--attachable", "--subnet", "10.30.0.0/24", "demo")
        #expect(net.succeeded && net.stdout.count == 26, "\(net.stdout) \(net.stderr)")
        let nls = try await t.meshctl("network", "ls")
        #expect(nls.stdout.hasPrefix("NETWORK ID     NAME      DRIVER    SCOPE\n"), "\(nls.stdout)")
        #expect(nls.stdout.contains("   demo      overlay   swarm"))
        #expect(try await t.meshctl("network", "inspect", "demo").stdout.contains("\"Subnet\" : \"10.30.0.0/24\""))
        #expect(
            try await t.meshctl("network", "create", "demo").stderr == "Error response from daemon: network with name demo already exists\n"
        )

        let create = try await t.meshctl(
            "service", "create", "--name", "web", "-p", "8000:80", "--replicas", "2", "--network", "demo",
            "--env", "A=1", "--update-delay", "2s", "--update-monitor", "300ms", "nginx", "--port", "80")
        #expect(create.succeeded, "\(create.stderr)")
        #expect(
            create.stdout.contains("overall progress: 2 out of 2 tasks") && create.stdout.contains("verify: Service"), "\(create.stdout)")
        let svc = try await t.engine.inspectService("web")
        #expect(svc.Spec.TaskTemplate.ContainerSpec?.Args == ["--port", "80"] && svc.Spec.TaskTemplate.ContainerSpec?.Env == ["A=1"])
        #expect(svc.Spec.UpdateConfig?.Delay == 2_000_000_000)

        let ls = try await t.meshctl("service", "ls")
        let lsLines = ls.stdout.split(separator: "\n").map(String.init)
        #expect(lsLines.first == "ID             NAME      MODE         REPLICAS   IMAGE     PORTS", "\(ls.stdout)")
        #expect(lsLines.last == "\(svc.ID.prefix(12))   web       replicated   2/2        nginx     *:8000->80/tcp", "\(ls.stdout)")
        #expect(try await t.meshctl("service", "ls", "-q").stdout == svc.ID.prefix(12) + "\n")

        let scale = try await t.meshctl("service", "scale", "web=3")
        #expect(
            scale.stdout.hasPrefix("web scaled to 3\n") && scale.stdout.contains("overall progress: 3 out of 3 tasks"), "\(scale.stdout)")
        let update = try await t.meshctl(
            "service", "update", "-d", "--image", "nginx:2", "--env-add", "B=2", "--publish-add", "9000:90", "web")
        #expect(update.succeeded, "\(update.stderr)")
        let updated = try await t.engine.inspectService("web")
        #expect(updated.Spec.TaskTemplate.ContainerSpec?.Env == ["A=1", "B=2"] && updated.Spec.EndpointSpec?.Ports?.count == 2)
        let ps = try await t.meshctl("service", "ps", "web")
        let psLines = ps.stdout.split(separator: "\n").map(String.init)
        #expect(
            psLines.first?.hasPrefix("ID             NAME        IMAGE     NODE      DESIRED STATE   CURRENT STATE") == true, "\(ps.stdout)"
        )
        #expect(psLines.filter { $0.contains(" \\_ web.") }.count == 3, "\(ps.stdout)")
        #expect(psLines.filter { $0.contains("Running   ") && $0.contains("nginx:2") }.count == 3, "\(ps.stdout)")

        let rollback = try await t.meshctl("service", "rollback", "-d", "web")
        #expect(rollback.succeeded, "\(rollback.stderr)")
        #expect(try await t.engine.inspectService("web").Spec.TaskTemplate.ContainerSpec?.Image == "nginx")
        let pretty = try await t.meshctl("service", "inspect", "--pretty", "web")
        #expect(
            pretty.stdout.contains("Name:\t\tweb") && pretty.stdout.contains("Networks:\tdemo") && pretty.stdout.contains(" Delay:\t\t2s"),
            "\(pretty.stdout)")
        let inspected = try EngineJSON.decoder().decode(
            [Service].self, from: Data(try await t.meshctl("service", "inspect", "web").stdout.utf8))
        #expect(inspected.first?.Spec.RollbackConfig?.Monitor == 5_000_000_000)

        let logs = try await t.meshctl("service", "logs", "web")
        #expect(logs.stdout.contains("web.1.") && logs.stdout.contains("@node1    | task 1 listening"), "\(logs.stdout) \(logs.stderr)")
        #expect(logs.stderr.contains("| task 1 warming up"))
        #expect(try await t.meshctl("service", "logs", "--raw", "web").stdout.contains("\ntask 2 listening\n"))

        #expect(try await t.meshctl("service", "inspect", "nosuch").stderr == "no such service: nosuch\n")
        let scaleBad = try await t.meshctl("service", "scale", "web=x", "nosuch=2")
        #expect(
            scaleBad.status == 1 && scaleBad.stderr.contains("invalid scale specifier 'web=x'")
                && scaleBad.stderr.contains("service nosuch not found"))
        #expect(try await t.meshctl("network", "rm", "demo").stderr.contains("is in use by service web"))
        #expect(try await t.meshctl("service", "rm", "web").stdout == "web\n")
        #expect(try await t.meshctl("network", "rm", "demo").stdout == "demo\n")
        #expect(try await t.meshctl("service", "ls", "-q").stdout.isEmpty)
    }
}
