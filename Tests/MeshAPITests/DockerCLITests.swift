import Foundation
import MeshAPI
import MeshTestbed
import Testing

/// The stock docker CLI (28.2.2) against the server: what it prints is what a user sees.
@Suite("docker CLI", .serialized)
struct DockerCLITests {
    @Test func swarmInitNodesAndJoinTokens() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        let before = try await t.docker("service", "ls")
        #expect(before.status == 1)
        #expect(
            before.stderr.contains("Error response from daemon: This node is not a swarm manager. Use \"docker swarm init\""),
            "\(before.stderr)")

        let initOut = try await t.docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        #expect(initOut.succeeded, "\(initOut.stderr)")
        let nodeID = await t.engine.s.selfID
        let tokens = await t.engine.s.tokens
        #expect(initOut.stdout.contains("Swarm initialized: current node (\(nodeID)) is now a manager."), "\(initOut.stdout)")
        #expect(initOut.stdout.contains("docker swarm join --token \(tokens.Worker) 127.0.0.1:2377"), "\(initOut.stdout)")

        let ls = try await t.docker("node", "ls")
        #expect(ls.succeeded, "\(ls.stderr)")
        let lines = ls.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines.first?.hasPrefix("ID ") == true
                && lines.first?.contains("HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION") == true, "\(ls.stdout)")
        #expect(lines.count == 2)
        #expect(lines.last?.contains("\(nodeID) *") == true && lines.last?.contains("node1") == true, "\(ls.stdout)")
        #expect(lines.last?.contains("Ready") == true && lines.last?.contains("Active") == true && lines.last?.contains("Leader") == true)

        let jt = try await t.docker("swarm", "join-token", "worker")
        #expect(jt.stdout.contains("To add a worker to this swarm, run the following command:"), "\(jt.stdout) \(jt.stderr)")
        #expect(jt.stdout.contains("docker swarm join --token \(tokens.Worker) 127.0.0.1:2377"))
        #expect(try await t.docker("swarm", "join-token", "-q", "manager").stdout == tokens.Manager + "\n")
        let rotated = try await t.docker("swarm", "join-token", "--rotate", "-q", "worker")
        #expect(rotated.succeeded, "\(rotated.stderr)")
        let newWorker = await t.engine.s.tokens.Worker
        #expect(newWorker != tokens.Worker && rotated.stdout.contains(newWorker))

        let info = try await t.docker("info")
        #expect(
            info.stdout.contains("Swarm: active") && info.stdout.contains("NodeID: \(nodeID)") && info.stdout.contains("Is Manager: true"),
            "\(info.stdout) \(info.stderr)")
        let version = try await t.docker("version")
        #expect(version.succeeded && version.stdout.contains("API version:       1.50"), "\(version.stdout) \(version.stderr)")

        #expect(
            try await t.docker("node", "inspect", "self", "--format", "{{.Spec.Role}} {{.Spec.Availability}}").stdout == "manager active\n")
        #expect(try await t.docker("node", "update", "--availability", "drain", "--label-add", "zone=a", "node1").succeeded)
        #expect(
            try await t.docker("node", "inspect", "node1", "--format", "{{.Spec.Availability}} {{.Spec.Labels.zone}}").stdout == "drain a\n"
        )
        #expect(try await t.docker("node", "ls").stdout.contains("Drain"))
        let pretty = try await t.docker("node", "inspect", "--pretty", "self")
        #expect(
            pretty.succeeded && pretty.stdout.contains("Hostname:") && pretty.stdout.contains("node1"), "\(pretty.stdout) \(pretty.stderr)")

        let demote = try await t.docker("node", "demote", "node1")
        #expect(
            demote.stderr.contains(
                "Error response from daemon: rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm"
            ), "\(demote.stderr)")
        let rm = try await t.docker("node", "rm", "node1")
        #expect(rm.stderr.contains("is not down and can't be removed"), "\(rm.stderr)")
        let rmMissing = try await t.docker("node", "rm", "nosuch")
        #expect(rmMissing.stderr.contains("Error response from daemon: node nosuch not found"), "\(rmMissing.stderr)")
        let again = try await t.docker("swarm", "init")
        #expect(again.stderr.contains("Error response from daemon: This node is already part of a swarm."), "\(again.stderr)")
        let leave = try await t.docker("swarm", "leave")
        #expect(
            leave.status == 1
                && leave.stderr.contains("You are attempting to leave the swarm on a node that is participating as a manager."))
        let forced = try await t.docker("swarm", "leave", "--force")
        #expect(forced.stdout == "Node left the swarm.\n", "\(forced.stdout) \(forced.stderr)")
        #expect(try await t.docker("node", "ls").status == 1)
    }

    @Test func workerJoinAndItsRefusals() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        let bad = try await t.docker("swarm", "join", "--token", "nonsense", "10.0.0.1:2377")
        #expect(bad.status == 1 && bad.stderr.contains("Error response from daemon: invalid join token"), "\(bad.stderr)")
        let token = "SWMTKN-1-" + String(repeating: "a", count: 50) + "-" + String(repeating: "b", count: 25)
        let join = try await t.docker("swarm", "join", "--token", token, "10.0.0.1:2377")
        #expect(join.stdout == "This node joined a swarm as a worker.\n", "\(join.stdout) \(join.stderr)")
        let ls = try await t.docker("node", "ls")
        #expect(
            ls.stderr.contains(
                "Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state."),
            "\(ls.stderr)")
        #expect(try await t.curl("HEAD", "/_ping").headers["swarm"] == "active/worker")
    }

    @Test func overlayNetworks() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.docker("swarm", "init")
        let created = try await t.docker("network", "create", "-d", "overlay", "demo")
        #expect(created.succeeded && created.stdout.count == 26, "\(created.stdout) \(created.stderr)")
        let dup = try await t.docker("network", "create", "-d", "overlay", "demo")
        #expect(dup.stderr.contains("Error response from daemon: network with name demo already exists"), "\(dup.stderr)")
        let secure = try await t.docker(
            "network", "create", "-d", "overlay", "--attachable", "--opt", "encrypted", "--subnet", "10.20.0.0/24",
            "--gateway", "10.20.0.1", "secure")
        #expect(secure.succeeded, "\(secure.stderr)")
        let ls = try await t.docker("network", "ls")
        let lines = ls.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "NETWORK ID     NAME      DRIVER    SCOPE", "\(ls.stdout)")
        #expect(lines.count == 4)
        #expect(lines.contains { $0.contains(" demo ") && $0.contains("overlay") && $0.hasSuffix("swarm") }, "\(ls.stdout)")
        #expect(try await t.docker("network", "ls", "-q", "--filter", "name=demo").stdout.split(separator: "\n").count == 1)
        let inspect = try await t.docker(
            "network", "inspect", "secure", "--format",
            "{{.Driver}} {{.Scope}} {{.Attachable}} {{(index .IPAM.Config 0).Subnet}} {{.Options.encrypted}}|")
        #expect(inspect.stdout == "overlay swarm true 10.20.0.0/24 |\n", "\(inspect.stdout) \(inspect.stderr)")
        let missing = try await t.docker("network", "inspect", "nosuch")
        #expect(missing.status == 1 && missing.stderr.contains("nosuch"), "\(missing.stderr)")
        let rm = try await t.docker("network", "rm", "demo")
        #expect(rm.stdout == "demo\n", "\(rm.stdout) \(rm.stderr)")
        #expect(try await t.docker("network", "ls", "-q").stdout.split(separator: "\n").count == 2)
    }

    @Test func servicesLifecycle() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.docker("swarm", "init")
        _ = try await t.docker("network", "create", "-d", "overlay", "x")
        let create = try await t.docker(
            "service", "create", "--detach", "--name", "web", "-p", "8000:80", "--replicas", "2", "--network", "x", "nginx")
        #expect(create.succeeded, "\(create.stderr)")
        let id = await t.engine.s.services.first?.ID ?? "?"
        #expect(create.stdout == id + "\n", "\(create.stdout)")

        let ls = try await t.docker("service", "ls")
        let lsLines = ls.stdout.split(separator: "\n").map(String.init)
        #expect(lsLines.first == "ID             NAME      MODE         REPLICAS   IMAGE          PORTS", "\(ls.stdout)")
        #expect(
            lsLines.last?.hasPrefix(String(id.prefix(12)) + "   web       replicated   2/2        nginx:latest   *:8000->80/tcp") == true,
            "\(ls.stdout)")

        let ps = try await t.docker("service", "ps", "web")
        let psLines = ps.stdout.split(separator: "\n").map(String.init)
        #expect(psLines.count == 3, "\(ps.stdout) \(ps.stderr)")
        #expect(psLines.first?.hasPrefix("ID ") == true && psLines.first?.contains("DESIRED STATE   CURRENT STATE") == true)
        #expect(
            psLines[1].contains("web.1") && psLines[1].contains("node1") && psLines[1].contains("Running   ")
                && psLines[2].contains("web.2"), "\(ps.stdout)")

        let pretty = try await t.docker("service", "inspect", "--pretty", "web")
        #expect(
            pretty.stdout.contains("Name:\t\tweb") && pretty.stdout.contains("Replicas:\t2") && pretty.stdout.contains("Networks: x"),
            "\(pretty.stdout) \(pretty.stderr)")
        #expect(pretty.stdout.contains("PublishedPort = 8000"))
        let replicas = try await t.docker(
            "service", "inspect", "web", "--format", "{{.Spec.Mode.Replicated.Replicas}} {{.Spec.UpdateConfig.Monitor}}")
        #expect(replicas.stdout == "2 5s\n", "\(replicas.stdout) \(replicas.stderr)")

        let scale = try await t.docker("service", "scale", "--detach", "web=4")
        #expect(scale.stdout.contains("web scaled to 4"), "\(scale.stdout) \(scale.stderr)")
        #expect(try await t.docker("service", "ls").stdout.contains("4/4"))

        let update = try await t.docker("service", "update", "--detach", "--image", "nginx:1.27", "web")
        #expect(update.succeeded, "\(update.stderr)")
        let history = try await t.docker("service", "ps", "web")
        #expect(
            history.stdout.contains(" \\_ web.1") && history.stdout.contains("Shutdown") && history.stdout.contains("nginx:1.27"),
            "\(history.stdout)")
        let rollback = try await t.docker("service", "rollback", "--detach", "web")
        #expect(rollback.succeeded, "\(rollback.stderr)")
        #expect(
            try await t.docker("service", "inspect", "web", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}").stdout
                == "nginx:latest\n")

        let logs = try await t.docker("service", "logs", "web")
        #expect(logs.succeeded, "\(logs.stderr)")
        #expect(logs.stdout.contains("@node1    | task 1 listening") && logs.stdout.contains("web.1."), "\(logs.stdout) \(logs.stderr)")
        #expect(logs.stderr.contains("| task 1 warming up"), "\(logs.stderr)")

        let dup = try await t.docker("service", "create", "--detach", "--name", "web", "nginx")
        #expect(
            dup.stderr.contains(
                "Error response from daemon: rpc error: code = AlreadyExists desc = name conflicts with an existing object: service web already exists"
            ), "\(dup.stderr)")
        let missing = try await t.docker("service", "inspect", "nosuch")
        #expect(missing.status == 1 && missing.stderr.contains("no such service: nosuch"), "\(missing.stderr)")
        let scaleMissing = try await t.docker("service", "scale", "nosuch=2")
        #expect(scaleMissing.stderr.contains("service nosuch not found"), "\(scaleMissing.stderr)")
        let inUse = try await t.docker("network", "rm", "x")
        #expect(inUse.stderr.contains("is in use by service web"), "\(inUse.stderr)")

        #expect(try await t.docker("service", "rm", "web").stdout == "web\n")
        #expect(try await t.docker("service", "ls", "-q").stdout.isEmpty)
        #expect(try await t.docker("network", "rm", "x").succeeded)
    }

    @Test func createWaitsForConvergenceLikeDocker() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.docker("swarm", "init")
        let started = Date()
        let out = try await t.docker("service", "create", "--name", "conv", "--replicas", "3", "--update-monitor", "1s", "nginx")
        #expect(out.succeeded, "\(out.stderr)")
        #expect(out.stdout.contains("overall progress: 3 out of 3 tasks"), "\(out.stdout)")
        #expect(out.stdout.contains("verify: Service") && out.stdout.contains("converged"), "\(out.stdout)")
        #expect(Date().timeIntervalSince(started) < 15)
    }

    @Test func stackDeployResolvesNetworkNames() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.docker("swarm", "init")
        let dir = t.dockerConfig + "/stack"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let compose = """
            services:
              web:
                image: nginx:1.27
                ports: ["8080:80"]
                networks: [front]
                deploy:
                  replicas: 2
              api:
                image: traefik/whoami
                networks: [front]
            networks:
              front:
                driver: overlay
            """
        try compose.write(toFile: dir + "/compose.yml", atomically: true, encoding: .utf8)
        let deploy = try await t.docker("stack", "deploy", "-c", dir + "/compose.yml", "demo")
        #expect(deploy.succeeded, "\(deploy.stdout) \(deploy.stderr)")
        let services = try await t.docker("stack", "services", "demo")
        #expect(
            services.stdout.contains("demo_web") && services.stdout.contains("2/2") && services.stdout.contains("demo_api"),
            "\(services.stdout)")
        let net = try await t.engine.inspectNetwork("demo_front", scope: nil)
        let web = try await t.engine.inspectService("demo_web")
        #expect(web.Spec.TaskTemplate.Networks?.first?.Target == net.Id)
        let rm = try await t.docker("stack", "rm", "demo")
        #expect(rm.succeeded, "\(rm.stderr)")
        #expect(try await t.engine.listServices(ServiceFilter(), status: false).isEmpty)
    }

    @Test func filtersPruneNodePsAndOlderAPIVersions() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.docker("swarm", "init")
        _ = try await t.docker("network", "create", "-d", "overlay", "--label", "team=a", "used")
        _ = try await t.docker("network", "create", "-d", "overlay", "spare")
        _ = try await t.docker(
            "service", "create", "-d", "--name", "web", "--replicas", "2", "--network", "used", "--label", "tier=front", "nginx")
        _ = try await t.docker("service", "create", "-d", "--name", "agent", "--mode", "global", "busybox")
        _ = try await t.docker("service", "update", "-d", "--image", "nginx:2", "web")

        #expect(try await t.docker("service", "ls", "--filter", "mode=global", "--format", "{{.Name}}").stdout == "agent\n")
        #expect(try await t.docker("service", "ls", "--filter", "label=tier=front", "--format", "{{.Name}}").stdout == "web\n")
        #expect(try await t.docker("service", "ls", "--filter", "name=we", "-q").stdout.split(separator: "\n").count == 1)
        let running = try await t.docker("service", "ps", "--filter", "desired-state=running", "--format", "{{.Name}} {{.Image}}", "web")
        #expect(
            running.stdout.split(separator: "\n").sorted() == ["web.1 nginx:2", "web.2 nginx:2"], "\(running.stdout) \(running.stderr)")
        let shutdown = try await t.docker("service", "ps", "-f", "desired-state=shutdown", "-q", "web")
        #expect(shutdown.stdout.split(separator: "\n").count == 2)
        let global = try await t.docker("service", "ps", "--format", "{{.Name}}", "agent")
        let nodeID = await t.engine.s.selfID
        #expect(global.stdout == "agent.\(nodeID)\n", "\(global.stdout)")
        let nodePS = try await t.docker("node", "ps", "--filter", "desired-state=running", "--format", "{{.Name}}", "self")
        #expect(nodePS.stdout.split(separator: "\n").count == 3, "\(nodePS.stdout) \(nodePS.stderr)")
        #expect(try await t.docker("node", "ls", "--filter", "role=manager", "-q").stdout == nodeID + "\n")
        #expect(try await t.docker("node", "ls", "--filter", "role=worker", "-q").stdout.isEmpty)
        #expect(try await t.docker("network", "ls", "--filter", "label=team=a", "--format", "{{.Name}}").stdout == "used\n")
        let badFilter = try await t.docker("service", "ls", "--filter", "colour=red")
        #expect(badFilter.stderr.contains("Error response from daemon: invalid filter 'colour'"), "\(badFilter.stderr)")

        let prune = try await t.docker("network", "prune", "-f")
        #expect(prune.stdout.contains("Deleted Networks:\nspare\n"), "\(prune.stdout) \(prune.stderr)")
        #expect(try await t.docker("network", "ls", "--format", "{{.Name}}").stdout.split(separator: "\n").sorted() == ["ingress", "used"])

        // An older client pins its version; the server answers under that prefix too.
        let old = try await offPool([
            "env", "DOCKER_API_VERSION=1.41", "docker", "--config", t.dockerConfig, "-H", "unix://\(t.socket)",
            "service", "ls", "--format", "{{.Name}} {{.Replicas}}",
        ])
        #expect(old.stdout.split(separator: "\n").sorted() == ["agent 1/1", "web 2/2"], "\(old.stdout) \(old.stderr)")
        let tooNew = try await offPool([
            "env", "DOCKER_API_VERSION=1.51", "docker", "--config", t.dockerConfig, "-H", "unix://\(t.socket)", "node", "ls",
        ])
        #expect(tooNew.stderr.contains("client version 1.51 is too new. Maximum supported API version is 1.50"), "\(tooNew.stderr)")
    }
}
