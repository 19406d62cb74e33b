import Foundation
import MeshTestbed
import Testing

/// `docker stack deploy` of a compose file with secrets and configs, through the stock CLI, on
/// a real daemon running the service as a runc container: the stack's secrets and configs are
/// made under its namespace, the container reads them at their targets with the modes asked,
/// and `docker stack rm` takes the service, the network, the secrets and the configs away.
/// `docker events` shows the container's life as dockerd's would: create, start, its health, and
/// at the end kill, die, stop and destroy.
@Suite(.serialized) struct StackDeployTests {
    static let compose = """
        version: "3.8"
        services:
          app:
            image: IMAGE
            command: ["sleep", "3600"]
            healthcheck:
              test: ["CMD", "true"]
              interval: 1s
            networks: [back]
            secrets:
              - db_password
              - source: api_token
                target: token
                mode: 0400
            configs:
              - source: app_conf
                target: /etc/app.conf
        networks:
          back:
            driver: overlay
        secrets:
          db_password:
            file: ./db_password.txt
          api_token:
            file: ./token.txt
        configs:
          app_conf:
            file: ./app.conf
        """

    @Test func aStackWithSecretsAndConfigsDeploysAndGoes() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let registry = try await LocalRegistry.start(tag: "mds-registry")
        defer { registry.stop() }
        let built = try Exec.check([
            ContainerServiceTests.repoRoot + "/scripts/build-images", "--registry", registry.address, "--repo-prefix", "library", "busybox",
        ])
        let busybox = try #require(ContainerServiceTests.pushed(built)["busybox"]?.first, "\(built)")
        let c = try await DaemonCluster.build(tag: "mds", nodes: 1)
        var replica: LocalRegistry?
        defer {
            c.destroy()
            replica?.stop()
        }
        replica = try await registry.replica(in: c.lab.nodeNamespace(1))
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)

        let dir = "\(c.directory)/stack"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Self.compose.replacingOccurrences(of: "IMAGE", with: busybox).write(
            toFile: "\(dir)/compose.yml", atomically: true, encoding: .utf8)
        try "s3cret-db\n".write(toFile: "\(dir)/db_password.txt", atomically: true, encoding: .utf8)
        try "tok-42".write(toFile: "\(dir)/token.txt", atomically: true, encoding: .utf8)
        try "listen = 8080\n".write(toFile: "\(dir)/app.conf", atomically: true, encoding: .utf8)
        let since = String(Int(Date().timeIntervalSince1970) - 1)
        _ = ClusterTests.check(try c.docker(1, ["stack", "deploy", "-c", "\(dir)/compose.yml", "demo"]), "stack deploy", c)

        #expect(
            Set(ClusterTests.lines(try c.docker(1, ["secret", "ls", "--format", "{{.Name}}"]).stdout)) == [
                "demo_db_password", "demo_api_token",
            ])
        #expect(ClusterTests.lines(try c.docker(1, ["config", "ls", "--format", "{{.Name}}"]).stdout) == ["demo_app_conf"])
        let labels = try c.docker(
            1, ["secret", "inspect", "demo_db_password", "--format", "{{index .Spec.Labels \"com.docker.stack.namespace\"}}"])
        #expect(labels.stdout.contains("demo"), "\(labels)")

        var container = ""
        let running = try await ClusterTests.eventually(.seconds(120)) {
            container = try c.docker(1, ["ps", "-q", "--filter", "name=demo_app"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            return !container.isEmpty
        }
        let ps = try c.docker(1, ["service", "ps", "demo_app", "--no-trunc"]).stdout
        try #require(running, "\(ps)\n\(c.log(1).suffix(3000))")
        let read = ClusterTests.check(
            try c.docker(
                1,
                [
                    "exec", container, "sh", "-c",
                    "cat /run/secrets/db_password /run/secrets/token; echo; cat /etc/app.conf; stat -c '%a %n' /run/secrets/token /run/secrets/db_password",
                ]), "exec", c)
        #expect(read.stdout == "s3cret-db\ntok-42\nlisten = 8080\n400 /run/secrets/token\n444 /run/secrets/db_password\n", "\(read.stdout)")

        // Its check (every 1 s) passes before the stack goes: the health event is then in the log.
        let healthy = try await ClusterTests.eventually(.seconds(20)) {
            !(try c.docker(1, ["ps", "-q", "--filter", "health=healthy", "--filter", "name=demo_app"]).stdout.isEmpty)
        }
        let health = try c.docker(1, ["inspect", "--format", "{{json .State.Health}}", container]).stdout
        #expect(healthy, "\(health)")
        _ = ClusterTests.check(try c.docker(1, ["stack", "rm", "demo"]), "stack rm", c)
        let gone = try await ClusterTests.eventually(.seconds(60)) {
            try c.docker(1, ["service", "ls", "-q"]).stdout.isEmpty && c.docker(1, ["secret", "ls", "-q"]).stdout.isEmpty
                && c.docker(1, ["config", "ls", "-q"]).stdout.isEmpty
                && !c.docker(1, ["network", "ls", "--format", "{{.Name}}"]).stdout.contains("demo_back")
        }
        let left = try c.docker(1, ["service", "ls"]).stdout + c.docker(1, ["secret", "ls"]).stdout
        #expect(gone, "\(left)")

        func events() throws -> [String] {
            let until = String(Int(Date().timeIntervalSince1970) + 1)
            return ClusterTests.lines(
                try c.docker(
                    1,
                    [
                        "events", "--since", since, "--until", until, "--filter", "type=container", "--format",
                        "{{.Action}} {{.Actor.Attributes.name}} {{index .Actor.Attributes \"com.docker.stack.namespace\"}}",
                    ]
                ).stdout)
        }
        var seen: [String] = []
        let lifecycle = try await ClusterTests.eventually(.seconds(20)) {
            seen = try events().filter { $0.contains(" demo_app.") }.map { String($0.split(separator: " ")[0...1].joined(separator: " ")) }
            return seen.contains { $0.hasPrefix("destroy ") }
        }
        let actions = seen.map { String($0.split(separator: " ")[0]) }
        #expect(lifecycle, "\(seen)")
        #expect(Array(actions.prefix(2)) == ["create", "start"] && actions.contains("health_status:"), "\(seen)")
        let end = Array(actions.filter { ["kill", "die", "stop", "destroy"].contains($0) })
        #expect(end == ["kill", "die", "stop", "destroy"], "\(seen)")
        #expect(try events().allSatisfy { $0.hasSuffix(" demo") }, "every event carries the container's labels")
    }

    /// `ref` again as `<registry>/library/busyhealthy:1`, its config given a HEALTHCHECK (Docker's
    /// `config.Healthcheck`) by rewriting the config blob, the manifest and the index of an OCI
    /// layout copy, as `docker build` with a HEALTHCHECK line would have made it.
    static func withHealthcheck(_ ref: String, registry: String, scratch: String) throws -> String {
        let layout = "\(scratch)/oci"
        _ = try Exec.check(["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://\(ref)", "oci:\(layout):x"])
        let edit = """
            import hashlib, json, os, sys
            root = sys.argv[1]
            def blob(d): return os.path.join(root, "blobs", "sha256", d.split(":")[1])
            def put(data):
                d = "sha256:" + hashlib.sha256(data).hexdigest()
                open(blob(d), "wb").write(data)
                return d, len(data)
            index = json.load(open(os.path.join(root, "index.json")))
            manifest = json.load(open(blob(index["manifests"][0]["digest"])))
            config = json.load(open(blob(manifest["config"]["digest"])))
            config.setdefault("config", {})["Healthcheck"] = {"Test": ["CMD-SHELL", "test -e /bin/sh"], "Interval": 1000000000, "Retries": 2}
            manifest["config"]["digest"], manifest["config"]["size"] = put(json.dumps(config).encode())
            index["manifests"][0]["digest"], index["manifests"][0]["size"] = put(json.dumps(manifest).encode())
            json.dump(index, open(os.path.join(root, "index.json"), "w"))
            """
        _ = try Exec.check(["python3", "-c", edit, layout])
        let out = "\(registry)/library/busyhealthy:1"
        _ = try Exec.check(["skopeo", "copy", "-q", "--dest-tls-verify=false", "oci:\(layout):x", "docker://\(out)"])
        return out
    }

    /// An image's HEALTHCHECK runs when the service gives none (the task is Starting until a probe
    /// passes, then healthy), and `--no-healthcheck` turns it off, as with dockerd.
    @Test func theImagesHealthcheckRunsUnlessTheServiceTurnsItOff() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let registry = try await LocalRegistry.start(tag: "mdh-registry")
        defer { registry.stop() }
        let built = try Exec.check([
            ContainerServiceTests.repoRoot + "/scripts/build-images", "--registry", registry.address, "--repo-prefix", "library", "busybox",
        ])
        let busybox = try #require(ContainerServiceTests.pushed(built)["busybox"]?.first, "\(built)")
        let c = try await DaemonCluster.build(tag: "mdh", nodes: 1)
        var replica: LocalRegistry?
        defer {
            c.destroy()
            replica?.stop()
        }
        let image = try Self.withHealthcheck(busybox, registry: registry.address, scratch: c.directory)
        replica = try await registry.replica(in: c.lab.nodeNamespace(1))
        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "checked", image, "sleep", "3600"]), "service create", c)
        _ = ClusterTests.check(
            try c.docker(1, ["service", "create", "--detach", "--name", "unchecked", "--no-healthcheck", image, "sleep", "3600"]),
            "service create --no-healthcheck", c)
        var status: [String] = []
        let healthy = try await ClusterTests.eventually(.seconds(60)) {
            status = ClusterTests.lines(try c.docker(1, ["ps", "--format", "{{.Names}} {{.Status}}"]).stdout)
            return status.contains { $0.hasPrefix("checked.") && $0.hasSuffix("(healthy)") }
                && status.contains { $0.hasPrefix("unchecked.") }
        }
        #expect(healthy, "\(status)\n\(c.log(1).suffix(2000))")
        #expect(status.first { $0.hasPrefix("unchecked.") }.map { !$0.contains("health") } == true, "\(status)")
        #expect(try c.docker(1, ["ps", "-q", "--filter", "health=healthy"]).stdout.split(separator: "\n").count == 1)
        #expect(try c.docker(1, ["ps", "-q", "--filter", "health=none"]).stdout.split(separator: "\n").count == 1)
    }
}
