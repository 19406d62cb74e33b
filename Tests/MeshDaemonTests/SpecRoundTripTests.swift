import Foundation
import MeshAPI
import MeshCluster
import MeshDaemon
import MeshTestbed
import Testing

/// dockerd returns the ServiceSpec it was given. These tests send specs as JSON (decoded as the router
/// decodes a body), create them through the controller and compare what inspect encodes with what was
/// sent, after sorting keys only: every field must come back with its value and JSON type.
@Suite struct SpecRoundTripTests {
    static var fullSpec: String { SpecFixtures.fullServiceSpec }

    /// What the docker 28 CLI sends for `service create --network demo -p 8000:8000 --replicas 3`
    /// (docker-api.md), with the `Runtime` dockerd adds on the way back.
    static let cliSpec = """
        {"Name": "whoami", "Labels": {}, "TaskTemplate": {"ContainerSpec": {"Image": "meshd/whoami:latest", "Init": false, "DNSConfig": {}},
         "Resources": {"Limits": {}, "Reservations": {}}, "Placement": {}, "Networks": [{"Target": "NETWORK"}], "ForceUpdate": 0,
         "Runtime": "container"},
         "Mode": {"Replicated": {"Replicas": 3}},
         "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 8000, "PublishedPort": 8000, "PublishMode": "ingress"}]}}
        """

    static func decode(_ text: String, network: String) throws -> MeshAPI.ServiceSpec {
        try EngineJSON.decodeRequest(MeshAPI.ServiceSpec.self, from: Data(text.replacingOccurrences(of: "NETWORK", with: network).utf8))
    }

    /// JSON text with sorted keys, the only normalisation the comparison allows.
    static func canonical(_ data: Data) throws -> String {
        let tree = try JSONSerialization.jsonObject(with: data)
        return String(decoding: try JSONSerialization.data(withJSONObject: tree, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self)
    }

    static func canonical(_ text: String, network: String) throws -> String {
        try canonical(Data(text.replacingOccurrences(of: "NETWORK", with: network).utf8))
    }

    static func canonical(_ spec: MeshAPI.ServiceSpec) throws -> String { try canonical(try EngineJSON.encoder().encode(spec)) }

    @Test(arguments: ["full", "cli"])
    func createdSpecIsInspectedAsSent(which: String) async throws {
        let text = which == "full" ? Self.fullSpec : Self.cliSpec
        try await TestCluster.with { c in
            let net = try await c.controller.createNetwork(NetworkCreateRequest(Name: "demo"))
            let created = try await c.controller.createService(try Self.decode(text, network: net.Id))
            let shown = try await c.controller.inspectService(created.ID)
            #expect(try Self.canonical(shown.Spec) == (try Self.canonical(text, network: net.Id)))
        }
    }

    /// The same through update (the spec `inspect` showed, sent back unchanged, replaces no task) and
    /// rollback (back to the first spec, every field intact).
    @Test func fullSpecSurvivesUpdateAndRollback() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            let net = try await ctl.createNetwork(NetworkCreateRequest(Name: "demo"))
            let sent = try Self.decode(Self.fullSpec, network: net.Id)
            let id = try await ctl.createService(sent).ID
            try await c.converge(rounds: 2)
            let first = try await ctl.inspectService(id)

            func specVersion() throws -> UInt64? { try c.store.get(ClusterService.self, id: id)?.specVersion }
            let before = try specVersion()
            _ = try await ctl.updateService(id, version: first.Version.Index, spec: first.Spec, rollback: false)
            let same = try await ctl.inspectService(id)
            #expect(try Self.canonical(same.Spec) == (try Self.canonical(first.Spec)))
            #expect(try specVersion() == before, "the spec inspect showed, sent back, replaces no task")

            var changed = same.Spec
            changed.TaskTemplate.ContainerSpec?.Sysctls = ["net.ipv4.ip_forward": "1"]
            changed.TaskTemplate.Resources?.Limits?.MemoryBytes = 128 << 20
            _ = try await ctl.updateService(id, version: same.Version.Index, spec: changed, rollback: false)
            let updated = try await ctl.inspectService(id)
            #expect(updated.Spec == changed)
            #expect(try specVersion() == before.map { $0 + 1 }, "a recorded field is part of the task template, as in swarmkit")
            #expect(try Self.canonical(try #require(updated.PreviousSpec)) == (try Self.canonical(Self.fullSpec, network: net.Id)))

            _ = try await ctl.updateService(id, version: updated.Version.Index, spec: updated.Spec, rollback: true)
            let back = try await ctl.inspectService(id)
            #expect(try Self.canonical(back.Spec) == (try Self.canonical(Self.fullSpec, network: net.Id)))
        }
    }

    /// Known fields meshd cannot honour are refused with 400 and their name, never dropped.
    /// docker-py's `networks=` sends the deprecated top-level `ServiceSpec.Networks`: dockerd attaches
    /// them, inspect shows them there (names resolved to IDs), and an update that sends them in
    /// `TaskTemplate.Networks` (as docker-py's `fetch_current_spec` does) moves them.
    @Test func topLevelNetworksAreHonouredAndShownWhereSent() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            let net = try await ctl.createNetwork(NetworkCreateRequest(Name: "old"))
            let spec = try EngineJSON.decodeRequest(
                MeshAPI.ServiceSpec.self,
                from: Data(
                    #"{"Name": "r", "TaskTemplate": {"ContainerSpec": {"Image": "meshd/whoami"}}, "Networks": [{"Target": "old"}]}"#.utf8))
            let id = try await ctl.createService(spec).ID
            let shown = try await ctl.inspectService(id)
            #expect(shown.Spec.Networks?.map(\.Target) == [net.Id])
            #expect(shown.Spec.TaskTemplate.Networks == nil)
            #expect(try c.store.get(ClusterService.self, id: id)?.spec.task.networks.map(\.target) == [net.Id])
            var moved = shown.Spec
            moved.TaskTemplate.Networks = moved.Networks
            moved.Networks = nil
            _ = try await ctl.updateService(id, version: shown.Version.Index, spec: moved, rollback: false)
            let after = try await ctl.inspectService(id)
            #expect(after.Spec.Networks == nil)
            #expect(after.Spec.TaskTemplate.Networks?.map(\.Target) == [net.Id])
        }
    }

    @Test func fieldsMeshdCannotHonourAreRefusedByName() async throws {
        let cases: [(String, String)] = [
            (#""ContainerSpec": {"Image": "x", "Secrets": [{"SecretID": "s", "SecretName": "n"}]}"#, "ContainerSpec.Secrets"),
            (#""ContainerSpec": {"Image": "x", "Configs": [{"ConfigID": "c", "ConfigName": "n"}]}"#, "ContainerSpec.Configs"),
            (#""ContainerSpec": {"Image": "x"}, "PluginSpec": {"Name": "p"}"#, "TaskTemplate.PluginSpec"),
            (#""ContainerSpec": {"Image": "x"}, "NetworkAttachmentSpec": {"ContainerID": "c"}"#, "TaskTemplate.NetworkAttachmentSpec"),
            (#""ContainerSpec": {"Image": "x"}, "Runtime": "plugin""#, "TaskTemplate.Runtime"),
            (#""ContainerSpec": {"Image": "x", "Mounts": [{"Type": "nfs", "Target": "/m"}]}"#, "ContainerSpec.Mounts"),
            (#""ContainerSpec": {"Image": "x", "Isolation": "vm"}"#, "ContainerSpec.Isolation"),
            (#""ContainerSpec": {"Image": "x", "Ulimits": [{"Soft": 1, "Hard": 2}]}"#, "ContainerSpec.Ulimits"),
            (#""ContainerSpec": {"Image": "x"}, "Placement": {"Preferences": [{}]}"#, "Placement.Preferences"),
            (
                #""ContainerSpec": {"Image": "x"}, "Resources": {"Reservations": {"GenericResources": [{}]}}"#,
                "Reservations.GenericResources"
            ),
        ]
        try await TestCluster.with { c in
            for (template, field) in cases {
                let spec = try EngineJSON.decodeRequest(
                    MeshAPI.ServiceSpec.self, from: Data(#"{"Name": "r", "TaskTemplate": {\#(template)}}"#.utf8))
                let e = await engineError { _ = try await c.controller.createService(spec) }
                #expect(e?.status == 400, "\(field)")
                #expect(e?.message.contains(field) == true, "\(field): \(e?.message ?? "accepted")")
            }
            let both = try EngineJSON.decodeRequest(
                MeshAPI.ServiceSpec.self,
                from: Data(
                    #"{"Name": "r", "TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Networks": [{"Target": "m"}]}, "Networks": [{"Target": "n"}]}"#
                        .utf8))
            let e = await engineError { _ = try await c.controller.createService(both) }
            #expect(e?.status == 400 && e?.message.contains("ServiceSpec.Networks and TaskTemplate.Networks") == true)
            #expect(try await c.controller.listServices(ServiceFilter(), status: false).isEmpty)
        }
    }
}

/// issue 16: each spec rule lives in one place (`ServiceSpecNormalizer` for the request's form,
/// `MeshCluster.ServiceSpec.validate` for its meaning), so create, update and rollback answer alike.
@Suite struct SpecRuleTests {
    /// A change that breaks one rule, and the message dockerd (swarmkit) gives for it.
    static let rules: [(String, @Sendable (inout MeshAPI.ServiceSpec) -> Void, Int, String)] = [
        ("dot in name", { $0.Name = "a.b" }, 400, "name must be valid as a DNS name component"),
        ("trailing dash", { $0.Name = "ab-" }, 400, "name must be valid as a DNS name component"),
        (
            "same published port in host and ingress mode",
            {
                $0.EndpointSpec = MeshAPI.EndpointSpec(
                    Ports: [
                        MeshAPI.PortConfig(TargetPort: 80, PublishedPort: 8080, PublishMode: "host"),
                        MeshAPI.PortConfig(TargetPort: 81, PublishedPort: 8080, PublishMode: "ingress"),
                    ])
            }, 400, "EndpointSpec: duplicate published ports provided"
        ),
        (
            "dnsrr with an ingress port",
            { $0.EndpointSpec = MeshAPI.EndpointSpec(Mode: "dnsrr", Ports: [MeshAPI.PortConfig(TargetPort: 80, PublishedPort: 8081)]) },
            400, "EndpointSpec: port published with ingress mode can't be used with dnsrr mode"
        ),
        ("no image", { $0.TaskTemplate.ContainerSpec?.Image = "" }, 400, "ContainerSpec: image reference must be provided"),
        ("negative update delay", { $0.UpdateConfig?.Delay = -1 }, 400, "UpdateConfig: update-delay cannot be negative"),
        ("bad failure action", { $0.UpdateConfig?.FailureAction = "explode" }, 400, "UpdateConfig: invalid FailureAction explode"),
        (
            "bad protocol", { $0.EndpointSpec = MeshAPI.EndpointSpec(Ports: [MeshAPI.PortConfig(Protocol: "icmp", TargetPort: 1)]) }, 400,
            "invalid protocol icmp"
        ),
        (
            "negative healthcheck",
            {
                $0.TaskTemplate.ContainerSpec?.Healthcheck = {
                    var h = MeshAPI.ContainerSpec.HealthConfig()
                    h.Interval = -1
                    return h
                }()
            }, 400, "Healthcheck"
        ),
        (
            "healthcheck interval under 1ms",
            {
                $0.TaskTemplate.ContainerSpec?.Healthcheck = {
                    var h = MeshAPI.ContainerSpec.HealthConfig()
                    h.Test = ["CMD", "true"]
                    h.Interval = 999_999
                    return h
                }()
            }, 400, "ContainerSpec: Interval in Healthcheck cannot be less than 1ms"
        ),
        (
            "healthcheck test of an unknown kind",
            {
                $0.TaskTemplate.ContainerSpec?.Healthcheck = {
                    var h = MeshAPI.ContainerSpec.HealthConfig()
                    h.Test = ["SHELL", "true"]
                    return h
                }()
            }, 400, "ContainerSpec: Healthcheck Test must be"
        ),
        (
            "negative memory limit", { $0.TaskTemplate.Resources = ResourceRequirements(Limits: .init(MemoryBytes: -1)) }, 400,
            "Resources.Limits"
        ),
    ]

    @Test func createAndUpdateRefuseAlike() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            let id = try await ctl.createService(webSpec("base")).ID
            for (what, change, status, message) in Self.rules {
                var bad = webSpec("base")
                change(&bad)
                let created = await engineError { _ = try await ctl.createService(bad) }
                let version = try await ctl.inspectService(id).Version.Index
                // The name rules are about the name the update sends; an update that renames is refused
                // first (Unimplemented), so update keeps the name and breaks the rule on a new service.
                if bad.Name != "base" {
                    #expect(created?.status == status, "\(what)")
                    #expect(created?.message.hasSuffix(message) == true, "\(what): \(created?.message ?? "accepted")")
                    continue
                }
                let updated = await engineError { _ = try await ctl.updateService(id, version: version, spec: bad, rollback: false) }
                #expect(created?.status == status, "create, \(what)")
                #expect(created?.message.contains(message) == true, "create, \(what): \(created?.message ?? "accepted")")
                #expect(updated == created, "update answers as create does: \(what)")
            }
            #expect(try await ctl.listServices(ServiceFilter(), status: false).count == 1)
        }
    }

    /// A dotted name an older meshd stored (one of its four rule sets allowed dots) is not restored by a
    /// rollback: rollback runs the same rules as create and update.
    @Test func rollbackRunsTheSameRules() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            let id = try await ctl.createService(webSpec("web")).ID
            _ = try await ctl.withManager { m throws(ClusterError) in
                var s = try m.store.resolve(ClusterService.self, id)
                var old = s.spec
                old.name = "web.old"
                s.previousSpec = old
                return try m.store.update(s)
            }
            let version = try await ctl.inspectService(id).Version.Index
            let e = await engineError { _ = try await ctl.updateService(id, version: version, spec: webSpec("web"), rollback: true) }
            #expect(e?.status == 400)
            #expect(e?.message == "rpc error: code = InvalidArgument desc = name must be valid as a DNS name component")
            #expect(try await ctl.inspectService(id).Spec.Name == "web")
        }
    }

    /// The rule that decides is the cluster's, whoever calls it: the cluster model refuses what the API
    /// pipeline refuses, with the same words.
    @Test func theClusterModelOwnsTheMeaningRules() throws {
        for (what, change, _, message) in Self.rules {
            var bad = webSpec("base")
            change(&bad)
            guard let cluster = try? APIMapping.clusterServiceSpec(bad) else { continue }  // a form rule: the normaliser's
            #expect(throws: ClusterError.self, "\(what)") { try cluster.validate() }
            do { try cluster.validate() } catch {
                #expect(APIMapping.engineError(error).message.contains(message), "\(what)")
            }
        }
    }
}

/// `POST /swarm/init` honours `Spec` as `/swarm/update` does (dockerd's `MergeSwarmSpecToGRPC`).
@Suite struct SwarmInitSpecTests {
    static func initRequest(_ json: String) throws -> SwarmInitRequest {
        try EngineJSON.decodeRequest(SwarmInitRequest.self, from: Data(json.utf8))
    }

    @Test func initSpecIsMergedOverDefaultsAndShown() async throws {
        // docker-py's test_init_swarm_custom_raft_spec and test_init_swarm_with_ca_config, in one.
        let request = try Self.initRequest(
            """
            {"ListenAddr": "0.0.0.0:2377", "Spec": {"Labels": {"a": "b"}, "Orchestration": {"TaskHistoryRetentionLimit": 2},
             "Raft": {"SnapshotInterval": 5000, "LogEntriesForSlowFollowers": 1200, "KeepOldSnapshots": 1},
             "Dispatcher": {"HeartbeatPeriod": 7000000000},
             "CAConfig": {"NodeCertExpiry": 7776000000000000, "ForceRotate": 6000000000000},
             "TaskDefaults": {"LogDriver": {"Name": "json-file", "Options": {"max-file": "3"}}},
             "EncryptionConfig": {"AutoLockManagers": false}}}
            """)
        let spec = try SwarmSpecRules.initialSpec(request)
        #expect(spec.Name == "default" && spec.Labels == ["a": "b"])
        #expect(spec.Orchestration?.TaskHistoryRetentionLimit == 2)
        #expect(spec.Raft == SwarmSpec.Raft(SnapshotInterval: 5000, KeepOldSnapshots: 1, LogEntriesForSlowFollowers: 1200))
        #expect(spec.Dispatcher?.HeartbeatPeriod == 7_000_000_000)
        #expect(spec.CAConfig?.NodeCertExpiry == 7_776_000_000_000_000 && spec.CAConfig?.ForceRotate == 6_000_000_000_000)
        #expect(spec.TaskDefaults?.LogDriver == Driver(Name: "json-file", Options: ["max-file": "3"]))

        try await TestCluster.withInit(spec) { c in
            let swarm = try await c.controller.inspectSwarm()
            #expect(swarm.cluster.Spec == spec)
            #expect(swarm.cluster.Version.Index == 1)
            // What meshd acts on is applied: the reaper keeps two old tasks per slot.
            let limit = try await c.controller.read { m throws(ClusterError) in m.reaper.retentionLimit }
            #expect(limit == 2)
            // And `swarm update` with what inspect showed keeps it.
            try await c.controller.updateSwarm(swarm.cluster.Spec, version: 1, rotate: SwarmRotation())
            #expect(try await c.controller.inspectSwarm().cluster.Spec == spec)
        }
    }

    /// The CLI's `swarm init` sends zero values, which keep meshd's defaults (and no Raft section).
    @Test func cliInitKeepsDefaults() throws {
        let request = try Self.initRequest(
            """
            {"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "", "DataPathAddr": "", "DataPathPort": 0, "ForceNewCluster": false,
             "Spec": {"Labels": null, "Orchestration": {}, "Raft": {"ElectionTick": 0, "HeartbeatTick": 0}, "Dispatcher": {}, "CAConfig": {},
             "TaskDefaults": {}, "EncryptionConfig": {"AutoLockManagers": false}}, "AutoLockManagers": false, "Availability": "",
             "DefaultAddrPool": [], "SubnetSize": 24}
            """)
        #expect(try SwarmSpecRules.initialSpec(request) == APIMapping.defaultSwarmSpec)
    }

    /// Either way of asking for autolock (the CLI's flag, docker-py's spec) puts it in the spec.
    @Test func initTakesAutolockFromTheFlagOrTheSpec() throws {
        for json in [#"{"AutoLockManagers": true}"#, #"{"Spec": {"EncryptionConfig": {"AutoLockManagers": true}}}"#] {
            #expect(try SwarmSpecRules.initialSpec(try Self.initRequest(json)).EncryptionConfig?.AutoLockManagers == true, "\(json)")
        }
    }

    @Test func initRefusesWhatMeshdCannotHonourByName() throws {
        let cases: [(String, String)] = [
            (#"{"Spec": {"CAConfig": {"SigningCACert": "PEM", "SigningCAKey": "KEY"}}}"#, "CAConfig.SigningCACert"),
            (#"{"Spec": {"CAConfig": {"ExternalCAs": [{"Protocol": "cfssl", "URL": "https://ca"}]}}}"#, "CAConfig.ExternalCAs"),
            (#"{"Spec": {"Name": "other"}}"#, "swarm name"),
        ]
        for (json, field) in cases {
            #expect(throws: EngineError.self, "\(field)") { try SwarmSpecRules.initialSpec(try Self.initRequest(json)) }
            let request = try Self.initRequest(json)
            do { _ = try SwarmSpecRules.initialSpec(request) } catch {
                #expect(error.status == 400 && error.message.contains(field), "\(field): \(error.message)")
            }
        }
    }
}

extension TestCluster {
    /// A cluster initialised as `swarm init` initialises one with `spec`.
    static func withInit<R>(_ spec: SwarmSpec, _ body: (TestCluster) async throws -> R) async throws -> R {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshdaemon-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteClusterStore(path: dir.appendingPathComponent("cluster.sqlite").path)
        let managerID = ObjectID.make()
        let manager = try ClusterManager.initialize(store: store, nodeID: managerID, hostname: "manager1", advertiseAddr: "192.168.50.1")
        try ClusterController.recordInitialSpec(spec, in: manager)
        let controller = ClusterController(manager: manager, selfNodeID: managerID)
        return try await body(TestCluster(controller: controller, managerID: managerID, workerIDs: [], store: store))
    }
}
