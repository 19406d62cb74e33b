import Foundation
import MeshAPI
import MeshCluster
import MeshDaemon
import Testing

/// `docker secret` and `docker config` through the controller, with swarmkit's rules and dockerd's
/// statuses: a secret's data is never shown, a config's is; names are unique per kind; only labels change.
@Suite struct SwarmDataTests {
    static func spec(_ name: String, _ text: String, labels: [String: String]? = nil) -> MeshAPI.SwarmDataSpec {
        MeshAPI.SwarmDataSpec(Name: name, Labels: labels, Data: Data(text.utf8).base64EncodedString())
    }

    @Test func secretsAreKeptButNeverShown() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            let id = try await ctl.createSwarmData(.secret, Self.spec("db_password", "いざよいさくや", labels: ["tier": "db"])).ID
            let shown = try await ctl.inspectSwarmData(.secret, "db_password")
            #expect(shown.ID == id && shown.Spec.Name == "db_password" && shown.Spec.Labels == ["tier": "db"])
            #expect(shown.Spec.Data == nil, "a secret's data left the manager")
            // Stored sealed, never in the open (in the store's file either); the manager opens them.
            let stored = try #require(try c.store.get(ClusterSecret.self, id: id)?.spec.data)
            #expect(stored.starts(with: Data("meshd-sealed-1:".utf8)) && stored.range(of: Data("いざよいさくや".utf8)) == nil)
            #expect(try await ctl.read { m throws(ClusterError) in try m.secret(id)?.spec.data } == Data("いざよいさくや".utf8))
            #expect(try Data(contentsOf: URL(fileURLWithPath: c.store.path)).range(of: Data("いざよいさくや".utf8)) == nil)

            let dup = await engineError { _ = try await ctl.createSwarmData(.secret, Self.spec("db_password", "x")) }
            #expect(dup?.status == 409 && dup?.message.contains("already exists") == true, "\(String(describing: dup))")
            // The same name as a config is another kind: allowed.
            _ = try await ctl.createSwarmData(.config, Self.spec("db_password", "x"))

            let badName = await engineError { _ = try await ctl.createSwarmData(.secret, Self.spec("-bad", "x")) }
            #expect(badName?.status == 400 && badName?.message.contains("invalid name") == true)
            let empty = await engineError { _ = try await ctl.createSwarmData(.secret, Self.spec("empty", "")) }
            #expect(empty?.status == 400 && empty?.message.contains("larger than 0") == true)
            let big = await engineError {
                _ = try await ctl.createSwarmData(.secret, Self.spec("big", String(repeating: "a", count: ClusterSecret.maxSize)))
            }
            #expect(big?.status == 400 && big?.message.contains("less than 500 KiB") == true)

            // Filters: names exact, name prefix, id prefix, label.
            _ = try await ctl.createSwarmData(.secret, Self.spec("db_user", "u"))
            func names(_ key: String, _ value: String) async throws -> [String] {
                try await ctl.listSwarmData(.secret, SwarmDataFilter(FilterArgs([key: [value]]))).compactMap(\.Spec.Name).sorted()
            }
            #expect(try await names("names", "db_password") == ["db_password"])
            #expect(try await names("name", "db_") == ["db_password", "db_user"])
            #expect(try await names("id", String(id.prefix(6))) == ["db_password"])
            #expect(try await names("label", "tier=db") == ["db_password"])
            #expect(try await ctl.listSwarmData(.secret, SwarmDataFilter()).count == 2)
        }
    }

    @Test func onlyLabelsChangeAndRemovalForgets() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            let id = try await ctl.createSwarmData(.config, Self.spec("site.conf", "listen 80;")).ID
            let first = try await ctl.inspectSwarmData(.config, id)
            #expect(first.Spec.Data.flatMap { Data(base64Encoded: $0) } == Data("listen 80;".utf8), "a config is shown back")

            var relabelled = first.Spec
            relabelled.Labels = ["v": "2"]
            try await ctl.updateSwarmData(.config, id, version: first.Version.Index, spec: relabelled)
            let second = try await ctl.inspectSwarmData(.config, id)
            #expect(second.Spec.Labels == ["v": "2"] && second.Version.Index > first.Version.Index)

            let stale = await engineError { try await ctl.updateSwarmData(.config, id, version: first.Version.Index, spec: relabelled) }
            #expect(stale?.message.contains("update out of sequence") == true, "\(String(describing: stale))")
            var newData = second.Spec
            newData.Data = Data("listen 81;".utf8).base64EncodedString()
            let changed = await engineError { try await ctl.updateSwarmData(.config, id, version: second.Version.Index, spec: newData) }
            #expect(changed?.status == 400 && changed?.message.contains("only updates to Labels are allowed") == true)

            // A secret's spec comes back without data, so an update without data keeps it.
            let sid = try await ctl.createSwarmData(.secret, Self.spec("token", "t0k3n")).ID
            var secret = try await ctl.inspectSwarmData(.secret, sid)
            secret.Spec.Labels = ["rotated": "no"]
            try await ctl.updateSwarmData(.secret, sid, version: secret.Version.Index, spec: secret.Spec)
            #expect(try await ctl.read { m throws(ClusterError) in try m.secret(sid)?.spec.data } == Data("t0k3n".utf8))
            // The same data again is no change; other data is refused, as swarmkit refuses it.
            secret.Spec.Data = Data("t0k3n".utf8).base64EncodedString()
            try await ctl.updateSwarmData(.secret, sid, version: secret.Version.Index + 1, spec: secret.Spec)
            secret.Spec.Data = Data("other".utf8).base64EncodedString()
            let otherData = await engineError {
                try await ctl.updateSwarmData(.secret, sid, version: secret.Version.Index + 2, spec: secret.Spec)
            }
            #expect(otherData?.message.contains("only updates to Labels are allowed") == true, "\(String(describing: otherData))")

            try await ctl.removeSwarmData(.config, "site.conf")
            let gone = await engineError { _ = try await ctl.inspectSwarmData(.config, id) }
            #expect(gone?.status == 404)
            let again = await engineError { try await ctl.removeSwarmData(.config, id) }
            #expect(again?.status == 404)
        }
    }

    @Test func secretAndConfigWritesAreEvents() {
        let now = Date()
        let secret = ClusterSecret(id: "s1", version: 3, createdAt: now, updatedAt: now, spec: DataObjectSpec(name: "pw", data: Data([1])))
        let events = EventTranslator.events(
            .secret(ObjectChange(action: .create, old: nil, new: secret, id: "s1", index: 3)), timeNano: 1)
        #expect(events.map(\.Type) == ["secret"] && events.first?.Action == "create")
        #expect(events.first?.Actor.Attributes == ["name": "pw"])
        let config = ClusterConfig(id: "c1", version: 4, createdAt: now, updatedAt: now, spec: DataObjectSpec(name: "cf", data: Data([1])))
        let removed = EventTranslator.events(.config(ObjectChange(action: .remove, old: config, new: nil, id: "c1", index: 5)), timeNano: 1)
        #expect(removed.map(\.Type) == ["config"] && removed.first?.Action == "remove")
    }

    /// A service names secrets and configs by ID and name: they must exist, two may not share a
    /// target, the references come back as sent, the node's assignment carries their data (and
    /// only for the tasks that name them), and a secret in use cannot be removed.
    @Test func servicesReferToSecretsAndConfigs() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            let sid = try await ctl.createSwarmData(.secret, Self.spec("pw", "hunter2")).ID
            let cid = try await ctl.createSwarmData(.config, Self.spec("site.conf", "listen 80;")).ID
            var spec = webSpec("app")
            spec.TaskTemplate.ContainerSpec?.Secrets = [
                SecretReference(File: FileTarget(Name: "pw", UID: "0", GID: "0", Mode: 0o400), SecretID: sid, SecretName: "pw")
            ]
            spec.TaskTemplate.ContainerSpec?.Configs = [
                ConfigReference(
                    File: FileTarget(Name: "/etc/site.conf", UID: "0", GID: "0", Mode: 0o444), ConfigID: cid, ConfigName: "site.conf")
            ]
            let id = try await ctl.createService(spec).ID
            let shown = try await ctl.inspectService(id).Spec.TaskTemplate.ContainerSpec
            let sent = spec.TaskTemplate.ContainerSpec
            #expect(shown?.Secrets == sent?.Secrets && shown?.Configs == sent?.Configs)

            var wrong = webSpec("wrong")
            wrong.TaskTemplate.ContainerSpec?.Secrets = [
                SecretReference(File: FileTarget(Name: "x"), SecretID: "nosuchid", SecretName: "pw")
            ]
            let missing = await engineError { _ = try await ctl.createService(wrong) }
            #expect(missing?.status == 400 && missing?.message.contains("secret not found: pw") == true, "\(String(describing: missing))")
            var clash = webSpec("clash")
            clash.TaskTemplate.ContainerSpec?.Secrets = [
                SecretReference(File: FileTarget(Name: "a"), SecretID: sid, SecretName: "pw"),
                SecretReference(File: FileTarget(Name: "/run/secrets/a"), SecretID: sid, SecretName: "pw"),
            ]
            let conflict = await engineError { _ = try await ctl.createService(clash) }
            #expect(conflict?.message.contains("conflicting target") == true, "\(String(describing: conflict))")
            var noFile = webSpec("nofile")
            noFile.TaskTemplate.ContainerSpec?.Secrets = [SecretReference(SecretID: sid, SecretName: "pw")]
            let malformed = await engineError { _ = try await ctl.createService(noFile) }
            #expect(malformed?.status == 400 && malformed?.message.contains("File.Name") == true)

            let inUse = await engineError { try await ctl.removeSwarmData(.secret, "pw") }
            let inUseText = inUse?.message ?? ""
            #expect(inUse?.status == 400 && inUseText.contains("in use by the following service: app"), "\(inUseText)")

            // What a node running one of the tasks is sent: the files with their data.
            try await c.reconcile()
            let snapshot = try c.store.snapshot()
            var data = DataFiles()
            let wanted = DataFiles.referenced(snapshot)
            for s in wanted.secrets { data.secrets[s] = try await ctl.read { m throws(ClusterError) in try m.secret(s) } }
            for x in wanted.configs { data.configs[x] = try c.store.get(ClusterConfig.self, id: x) }
            #expect(wanted.secrets == [sid] && wanted.configs == [cid])
            let node = try #require(snapshot.tasks.first { $0.serviceID == id }?.nodeID)
            let settings = try await ctl.withManager { m in m.settings }
            let a = try #require(AssignmentBuilder.build(snapshot, settings: settings, nodeID: node, data: data))
            let files = a.tasks.first { $0.service == id }?.files ?? []
            #expect(files.map(\.target) == ["/run/secrets/pw", "/etc/site.conf"] && files.first?.data == Data("hunter2".utf8), "\(files)")
            #expect(files.first?.mode == 0o400)

            try await ctl.removeService(id)
            try await ctl.removeSwarmData(.secret, "pw")
            #expect(try c.store.get(ClusterSecret.self, id: sid) == nil)
        }
    }
}

/// What a node is told of its tasks' history: an ended task that is not wanted any more is left
/// out of the tasks (nothing to run) but named in `retained`, so its container stays.
@Suite struct AssignmentHistoryTests {
    @Test func anEndedTaskLeavesTheTasksForTheHistory() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            _ = try await ctl.createService(webSpec("app"))
            try await c.reconcile()
            var task = try #require(try c.store.snapshot().tasks.first)
            let settings = try await ctl.withManager { m in m.settings }
            let before = try #require(AssignmentBuilder.build(try c.store.snapshot(), settings: settings, nodeID: task.nodeID))
            #expect(before.tasks.map(\.id) == [task.id] && before.retained == [])

            task.status.state = .complete
            task.desiredState = .shutdown
            try c.store.update(task)
            let after = try #require(AssignmentBuilder.build(try c.store.snapshot(), settings: settings, nodeID: task.nodeID))
            #expect(after.tasks.isEmpty && after.retained == [task.id])
        }
    }

    /// A service check with fields but no test (`--health-interval` alone) reaches the node, which
    /// lays those fields over the image's HEALTHCHECK, as dockerd does.
    @Test func aHealthcheckWithoutATestStillReachesTheNode() async throws {
        try await TestCluster.with { c in
            var spec = webSpec("tuned")
            var health = MeshAPI.ContainerSpec.HealthConfig()
            health.Interval = 2_000_000_000
            spec.TaskTemplate.ContainerSpec?.Healthcheck = health
            _ = try await c.controller.createService(spec)
            try await c.reconcile()
            let task = try #require(try c.store.snapshot().tasks.first)
            let settings = try await c.controller.withManager { m in m.settings }
            let a = try #require(AssignmentBuilder.build(try c.store.snapshot(), settings: settings, nodeID: task.nodeID))
            #expect(a.tasks.first?.container?.healthcheck == .init(test: [], intervalNanos: 2_000_000_000))
        }
    }
}
