import Foundation
import MeshAPI
import MeshCluster
import MeshDaemon
import MeshKernel
import Testing

@Suite struct ClusterControllerTests {
    @Test func swarmInspectInfoAndTokenRotation() async throws {
        try await TestCluster.with(workers: 1) { c in
            let settings = try await c.controller.read { m throws(ClusterError) in m.settings }
            let swarm = try await c.controller.inspectSwarm()
            #expect(swarm.cluster.ID == settings.clusterID && swarm.cluster.CreatedAt == settings.createdAt)
            #expect(swarm.cluster.DefaultAddrPool == ["10.0.0.0/8"] && swarm.cluster.SubnetSize == 24 && swarm.cluster.DataPathPort == 4789)
            #expect(swarm.cluster.Spec.Name == "default" && swarm.cluster.Spec.Orchestration?.TaskHistoryRetentionLimit == 5)
            #expect(swarm.JoinTokens == MeshAPI.JoinTokens(Worker: settings.tokens.worker, Manager: settings.tokens.manager))
            // The CLI base64-decodes the issuer fields; the trust root is the CA's PEM.
            #expect(swarm.cluster.TLSInfo.TrustRoot == settings.caCertificatePEM)
            #expect(Data(base64Encoded: swarm.cluster.TLSInfo.CertIssuerSubject ?? "") != nil)
            #expect(Data(base64Encoded: swarm.cluster.TLSInfo.CertIssuerPublicKey ?? "")?.isEmpty == false)

            let info = await c.controller.swarmInfo(selfAddr: "192.168.50.1")
            #expect(info.NodeID == c.managerID && info.NodeAddr == "192.168.50.1" && info.LocalNodeState == .active)
            #expect(info.ControlAvailable && info.Nodes == 2 && info.Managers == 1 && info.Error.isEmpty)
            #expect(info.RemoteManagers == [SwarmInfo.Peer(NodeID: c.managerID, Addr: "192.168.50.1:2377")])
            #expect(info.Cluster == swarm.cluster && info.pingHeader == "active/manager")

            // `join-token --rotate worker`: the version moves on, the old worker token stops working.
            let v = swarm.cluster.Version.Index
            try await c.controller.updateSwarm(swarm.cluster.Spec, version: v, rotate: SwarmRotation(workerToken: true))
            let rotated = try await c.controller.inspectSwarm()
            #expect(rotated.cluster.Version.Index == v + 1 && rotated.cluster.UpdatedAt >= swarm.cluster.UpdatedAt)
            #expect(rotated.JoinTokens.Worker != swarm.JoinTokens.Worker && rotated.JoinTokens.Manager == swarm.JoinTokens.Manager)
            let (_, csr) = try ClusterCA.makeRequest(nodeID: ObjectID.make())
            let oldToken = swarm.JoinTokens.Worker
            await #expect(throws: ClusterError.self) {
                try await c.controller.withManager { m throws(ClusterError) in
                    try m.join(token: oldToken, nodeID: ObjectID.make(), hostname: "late", addr: "192.168.50.9", csr: csr).node.id
                }
            }
            _ = try await TestCluster.join(c.controller, hostname: "late", addr: "192.168.50.9")

            // A stale version is swarmkit's "update out of sequence".
            let stale = await engineError { try await c.controller.updateSwarm(swarm.cluster.Spec, version: v, rotate: SwarmRotation()) }
            #expect(stale == .updateOutOfSequence)

            // `swarm update --task-history-limit 2` reaches the reaper.
            var spec = rotated.cluster.Spec
            spec.Orchestration = .init(TaskHistoryRetentionLimit: 2)
            try await c.controller.updateSwarm(spec, version: v + 1, rotate: SwarmRotation(managerToken: true))
            #expect(try await c.controller.read { m throws(ClusterError) in m.reaper.retentionLimit } == 2)
            let updated = try await c.controller.inspectSwarm()
            #expect(
                updated.cluster.Spec.Orchestration?.TaskHistoryRetentionLimit == 2 && updated.JoinTokens.Manager != swarm.JoinTokens.Manager
            )

            // A restarted manager keeps the version and the spec.
            let reopened = try #require(try ClusterManager.open(store: c.store))
            let restarted = ClusterController(manager: reopened, selfNodeID: c.managerID)
            let again = try await restarted.inspectSwarm()
            #expect(again.cluster.Version.Index == v + 2 && again.cluster.Spec == updated.cluster.Spec)
            #expect(try await restarted.read { m throws(ClusterError) in m.reaper.retentionLimit } == 2)

            // With autolock off, dockerd's key is the empty string, and a rotation has none to replace.
            #expect(try await restarted.unlockKey() == "")
            try await restarted.updateSwarm(again.cluster.Spec, version: v + 2, rotate: SwarmRotation(managerUnlockKey: true))
            #expect(try await restarted.unlockKey() == "")
            // On: a key in dockerd's form, which a rotation replaces; a restart needs it (the CA key is sealed).
            var autolock = again.cluster.Spec
            autolock.EncryptionConfig = .init(AutoLockManagers: true)
            try await restarted.updateSwarm(autolock, version: v + 3, rotate: SwarmRotation())
            let key = try await restarted.unlockKey()
            #expect(key.hasPrefix("SWMKEY-1-"))
            try await restarted.updateSwarm(autolock, version: v + 4, rotate: SwarmRotation(managerUnlockKey: true))
            let newKey = try await restarted.unlockKey()
            #expect(newKey.hasPrefix("SWMKEY-1-") && newKey != key)
            #expect(throws: ClusterError.locked) { try ClusterManager.open(store: c.store) }
            #expect(try ClusterManager.open(store: c.store, unlockKey: try UnlockKey(parsing: newKey)) != nil)
            // A spec without EncryptionConfig (docker-py sends `{}`) turns it off again.
            try await restarted.updateSwarm(SwarmSpec(), version: v + 5, rotate: SwarmRotation(managerUnlockKey: true))
            #expect(try await restarted.unlockKey() == "")
            #expect(try ClusterManager.open(store: c.store) != nil)
        }
    }

    @Test func networksCreateListInspectRemoveAndPrune() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            let created = try await ctl.createNetwork(
                NetworkCreateRequest(
                    Name: "demo", IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.30.0.0/24")]), Attachable: true,
                    Options: ["encrypted": ""], Labels: ["com.docker.stack.namespace": "st"]))
            let demo = try await ctl.inspectNetwork("demo", scope: "swarm")
            #expect(demo.Id == created.Id && demo.Scope == "swarm" && demo.Driver == "overlay" && demo.Attachable)
            #expect(demo.IPAM.Config?.first?.Subnet == "10.30.0.0/24" && demo.IPAM.Config?.first?.Gateway == "10.30.0.1")
            #expect(demo.Options["com.docker.network.driver.overlay.vxlanid_list"] == "4097" && demo.Options["encrypted"] == "")
            #expect(try await ctl.inspectNetwork(String(created.Id.prefix(6)), scope: nil).Name == "demo")
            #expect(await engineError { _ = try await ctl.inspectNetwork("demo", scope: "local") } == .notFound("network demo not found"))
            #expect(await engineError { _ = try await ctl.inspectNetwork("nosuch", scope: nil) } == .notFound("network nosuch not found"))

            let ingress = try await ctl.inspectNetwork("ingress", scope: nil)
            #expect(
                ingress.Ingress && ingress.IPAM.Config?.first?.Subnet == "10.0.0.0/24"
                    && ingress.Options["com.docker.network.driver.overlay.vxlanid_list"] == "4096")

            #expect(
                await engineError { _ = try await ctl.createNetwork(NetworkCreateRequest(Name: "demo")) }
                    == .conflict("network with name demo already exists"))
            #expect(await engineError { _ = try await ctl.createNetwork(NetworkCreateRequest(Name: "in2", Ingress: true)) }?.status == 409)
            let overlap = await engineError {
                _ = try await ctl.createNetwork(NetworkCreateRequest(Name: "o", IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.30.0.0/16")])))
            }
            #expect(overlap?.status == 400 && overlap?.message.contains("overlaps") == true)
            _ = try await ctl.createNetwork(NetworkCreateRequest(Name: "spare"))

            let all = try await ctl.listNetworks(NetworkFilter())
            #expect(Set(all.map(\.Name)) == ["ingress", "demo", "spare"])
            func names(_ f: [String: [String]]) async throws -> Set<String> {
                Set(try await ctl.listNetworks(NetworkFilter(filter(f))).map(\.Name))
            }
            #expect(try await names(["label": ["com.docker.stack.namespace=st"]]) == ["demo"])
            #expect(try await names(["type": ["custom"]]) == ["demo", "spare"])
            #expect(try await names(["type": ["builtin"]]) == ["ingress"])
            #expect(try await names(["name": ["spa"]]) == ["spare"])
            #expect(try await names(["id": [String(created.Id.prefix(8))]]) == ["demo"])
            #expect(try await names(["driver": ["bridge"]]).isEmpty)

            // A service on demo keeps it from removal and from prune; demo is no longer dangling.
            _ = try await ctl.createService(webSpec("web", networks: [created.Id]))
            #expect(try await names(["dangling": ["true"]]) == ["spare"])
            #expect(try await names(["dangling": ["false"]]) == ["ingress", "demo"])
            let inUse = await engineError { try await ctl.removeNetwork("demo") }
            #expect(
                inUse?.status == 400
                    && inUse?.message == "rpc error: code = FailedPrecondition desc = network demo is in use by service web")
            #expect(try await ctl.pruneNetworks() == ["spare"])
            #expect(Set(try await ctl.listNetworks(NetworkFilter()).map(\.Name)) == ["ingress", "demo"])

            try await ctl.removeService("web")
            try await ctl.removeNetwork(String(created.Id.prefix(10)))
            #expect(try await ctl.listNetworks(NetworkFilter()).map(\.Name) == ["ingress"])
            #expect(try await ctl.pruneNetworks().isEmpty)
            // The VNI and subnet were released: the next network gets them again.
            _ = try await ctl.createNetwork(NetworkCreateRequest(Name: "again", IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.30.0.0/24")])))
            #expect(try await ctl.inspectNetwork("again", scope: nil).Options["com.docker.network.driver.overlay.vxlanid_list"] == "4097")
        }
    }

    /// dockerd lets `network rm ingress` through when no service publishes a port, and `network create
    /// --ingress` makes the replacement, which nodes and published services then use.
    @Test func ingressIsRemovableWhenUnusedAndRecreatable() async throws {
        try await TestCluster.with(workers: 1) { c in
            let ctl = c.controller
            let old = try await ctl.inspectNetwork("ingress", scope: nil)
            let publisher = try await ctl.createService(webSpec("pub", ports: [MeshAPI.PortConfig(TargetPort: 80, PublishedPort: 8080)])).ID
            _ = try await ctl.createService(webSpec("quiet"))
            try await c.converge(rounds: 2)
            let held = await engineError { try await ctl.removeNetwork("ingress") }
            #expect(held?.status == 400, "\(String(describing: held))")
            #expect(
                held?.message
                    == "rpc error: code = FailedPrecondition desc = ingress network cannot be removed because service \(publisher) depends on it"
            )
            // A second ingress network is refused while one exists.
            let second = await engineError { _ = try await ctl.createNetwork(NetworkCreateRequest(Name: "ingress2", Ingress: true)) }
            #expect(second?.status == 409 && second?.message.contains("ingress network (\(old.Id)) is already present") == true)

            // The publisher's removal frees it at once; a service without ports never held it.
            try await ctl.removeService("pub")
            try await ctl.removeNetwork("ingress")
            #expect(try await ctl.listNetworks(NetworkFilter()).allSatisfy { !$0.Ingress })
            let nodes = try await c.controller.read { m throws(ClusterError) in try m.store.list(ClusterNode.self) }
            #expect(nodes.count == 2 && nodes.allSatisfy { $0.attachments.isEmpty }, "the nodes' ingress addresses went with it")
            // Without an ingress network, publishing is refused in swarmkit's words; other services still work.
            let noIngress = await engineError {
                _ = try await ctl.createService(webSpec("p2", ports: [MeshAPI.PortConfig(TargetPort: 80)]))
            }
            #expect(
                noIngress?.message
                    == "rpc error: code = FailedPrecondition desc = service needs ingress network, but no ingress network is present")
            _ = try await ctl.createService(webSpec("plain", networks: []))
            // A join without an ingress network gets no ingress address, and works.
            let late = try await TestCluster.join(ctl, hostname: "late", addr: "192.168.50.7")
            try await c.converge(rounds: 2)

            // `network create --ingress` makes the new routing-mesh network, with its own name and subnet.
            let made = try await ctl.createNetwork(
                NetworkCreateRequest(
                    Name: "mesh-ingress", IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.77.0.0/24")]),
                    Ingress: true))
            let fresh = try await ctl.inspectNetwork("mesh-ingress", scope: nil)
            #expect(fresh.Id == made.Id && fresh.Ingress && fresh.IPAM.Config?.first?.Subnet == "10.77.0.0/24")
            let attached = try await c.controller.read { m throws(ClusterError) in try m.store.list(ClusterNode.self) }
            #expect(
                attached.count == 3 && attached.allSatisfy { $0.attachments.map(\.networkID) == [made.Id] }, "every node, the late one too")
            #expect(Set(attached.flatMap { $0.attachments.map(\.address) }).count == 3)
            #expect(attached.contains { $0.id == late })
            // Published services use it.
            let p3 = try await ctl.createService(webSpec("p3", ports: [MeshAPI.PortConfig(TargetPort: 80, PublishedPort: 8080)]))
            let vips = try await ctl.inspectService(p3.ID).Endpoint?.VirtualIPs ?? []
            #expect(vips.map(\.NetworkID) == [made.Id] && vips.first?.Addr.hasPrefix("10.77.0.") == true)
            try await c.converge(rounds: 3)
            let tasks = try await ctl.listTasks(TaskFilter(filter(["service": ["p3"]])))
            #expect(tasks.count == 1 && tasks.first?.NetworksAttachments?.map(\.Network.ID) == [made.Id])
            // The settings moved with it, and a restarted manager keeps them.
            let reopened = try #require(try ClusterManager.open(store: c.store))
            #expect(reopened.ingressNetworkID == made.Id && reopened.settings.ingressNetworkID == made.Id)
        }
    }

    @Test func serviceCreateReconcileTasksAndStatus() async throws {
        try await TestCluster.with(workers: 2) { c in
            let ctl = c.controller
            let net = try await ctl.createNetwork(
                NetworkCreateRequest(Name: "demo", IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.40.0.0/24")])))
            let ports = [MeshAPI.PortConfig(TargetPort: 80, PublishedPort: 8080), MeshAPI.PortConfig(TargetPort: 81)]
            let id = try await ctl.createService(webSpec("web", replicas: 3, networks: [net.Id], ports: ports, labels: ["tier": "front"]))
                .ID

            // Created, allocated, but not reconciled: no tasks yet, the endpoint is already resolved.
            let service = try await ctl.inspectService("web")
            #expect(service.ID == id && service.Spec.Name == "web" && service.Spec.Mode?.Replicated?.Replicas == 3)
            #expect(
                service.Spec.TaskTemplate.ContainerSpec?.Image == "meshd/whoami"
                    && service.Spec.TaskTemplate.ContainerSpec?.Args == ["--port", "80"])
            #expect(service.Spec.TaskTemplate.Networks?.map(\.Target) == [net.Id] && service.PreviousSpec == nil)
            #expect(service.Endpoint?.Spec?.Ports?.count == 2 && service.Endpoint?.Spec?.Ports?.last?.PublishedPort == nil)
            #expect(service.Endpoint?.Ports?.map(\.PublishedPort) == [8080, 30000])
            let ingressID = try await ctl.inspectNetwork("ingress", scope: nil).Id
            let vips = service.Endpoint?.VirtualIPs ?? []
            #expect(vips.map(\.NetworkID) == [ingressID, net.Id])
            #expect(vips.last?.Addr.hasPrefix("10.40.0.") == true && vips.last?.Addr.hasSuffix("/24") == true)
            #expect(try await ctl.listTasks(TaskFilter()).isEmpty)

            try await c.reconcile()
            let tasks = try await ctl.listTasks(TaskFilter(filter(["service": ["web"]])))
            #expect(tasks.count == 3 && Set(tasks.map(\.Slot)) == [1, 2, 3])
            let nodes = Set([c.managerID] + c.workerIDs)
            #expect(tasks.allSatisfy { nodes.contains($0.NodeID) && $0.DesiredState == "running" && $0.Status.State == "assigned" })
            // Spread: one per node.
            #expect(Set(tasks.map(\.NodeID)).count == 3)
            for t in tasks {
                let byName = Dictionary(uniqueKeysWithValues: (t.NetworksAttachments ?? []).map { ($0.Network.Spec.Name, $0.Addresses) })
                #expect(byName["demo"]?.first?.hasPrefix("10.40.0.") == true)
                #expect(byName["ingress"]?.first?.hasPrefix("10.0.0.") == true)
                #expect(t.Spec.ContainerSpec?.Image == "meshd/whoami" && t.ServiceID == id)
                #expect(try await ctl.inspectTask(String(t.ID.prefix(12))) == t)
            }

            var status = try await ctl.listServices(ServiceFilter(), status: true)
            #expect(status.map(\.ServiceStatus) == [Service.ServiceStatus(RunningTasks: 0, DesiredTasks: 3)])
            #expect(try await ctl.listServices(ServiceFilter(), status: false).first?.ServiceStatus == nil)
            try await c.playAgents()
            status = try await ctl.listServices(ServiceFilter(), status: true)
            #expect(status.first?.ServiceStatus == Service.ServiceStatus(RunningTasks: 3, DesiredTasks: 3))
            #expect(try await ctl.listTasks(TaskFilter(filter(["service": [id]]))).allSatisfy { $0.Status.State == "running" })

            // Global: one task per node.
            _ = try await ctl.createService(
                {
                    var s = webSpec("agent")
                    s.Mode = .global
                    return s
                }())
            try await c.converge(rounds: 2)
            let global = try await ctl.listTasks(TaskFilter(filter(["service": ["agent"]])))
            #expect(global.count == 3 && global.allSatisfy { $0.Slot == 0 } && Set(global.map(\.NodeID)) == nodes)
            let agent = try await ctl.listServices(ServiceFilter(filter(["name": ["agent"]])), status: true)
            #expect(agent.first?.ServiceStatus == Service.ServiceStatus(RunningTasks: 3, DesiredTasks: 3))

            // Removal: the tasks stop on the next passes and the network is free again.
            try await ctl.removeService("web")
            #expect(await engineError { _ = try await ctl.inspectService(id) } == .notFound("service \(id) not found"))
            try await c.converge(rounds: 3)
            #expect(try await ctl.listTasks(TaskFilter()).allSatisfy { $0.ServiceID != id })
            try await ctl.removeNetwork("demo")
        }
    }

    @Test func updateRollbackAndScale() async throws {
        try await TestCluster.with(workers: 1) { c in
            let ctl = c.controller
            // Short monitor windows so the rollout and the rollback complete within the test's rounds.
            var created = webSpec("web", replicas: 2)
            created.UpdateConfig?.Monitor = 1_000_000
            created.RollbackConfig = MeshAPI.UpdateConfig(Parallelism: 0, Monitor: 1_000_000)
            let id = try await ctl.createService(created).ID
            try await c.converge(rounds: 2)
            var service = try await ctl.inspectService(id)

            // A stale version, a rename and a mode change are refused; so is a rollback with no history.
            var spec = service.Spec
            spec.TaskTemplate.ContainerSpec?.Image = "meshd/whoami:v2"
            #expect(
                await engineError { _ = try await ctl.updateService(id, version: service.Version.Index - 1, spec: spec, rollback: false) }
                    == .updateOutOfSequence)
            var renamed = spec
            renamed.Name = "web2"
            #expect(
                await engineError { _ = try await ctl.updateService(id, version: service.Version.Index, spec: renamed, rollback: false) }
                    == .notImplemented("rpc error: code = Unimplemented desc = renaming services is not supported"))
            var global = spec
            global.Mode = .global
            #expect(
                await engineError { _ = try await ctl.updateService(id, version: service.Version.Index, spec: global, rollback: false) }
                    == .notImplemented("rpc error: code = Unimplemented desc = service mode change is not allowed"))
            #expect(
                await engineError { _ = try await ctl.updateService(id, version: service.Version.Index, spec: spec, rollback: true) }
                    == .noPreviousSpec(id))

            // `service update --image`: the previous spec is kept and the rollout replaces the tasks.
            _ = try await ctl.updateService("web", version: service.Version.Index, spec: spec, rollback: false)
            service = try await ctl.inspectService(id)
            #expect(service.Spec.TaskTemplate.ContainerSpec?.Image == "meshd/whoami:v2")
            #expect(service.PreviousSpec?.TaskTemplate.ContainerSpec?.Image == "meshd/whoami")
            try await c.converge(rounds: 12)
            service = try await ctl.inspectService(id)
            let upToDate = try await ctl.listTasks(
                TaskFilter(filter(["service": [id], "_up-to-date": ["true"], "desired-state": ["running"]])))
            #expect(upToDate.count == 2 && upToDate.allSatisfy { $0.Spec.ContainerSpec?.Image == "meshd/whoami:v2" })
            // The old tasks stay as history (`service ps` shows them as Shutdown).
            let history = try await ctl.listTasks(TaskFilter(filter(["service": [id], "desired-state": ["shutdown"]])))
            #expect(history.count == 2 && history.allSatisfy { $0.Spec.ContainerSpec?.Image == "meshd/whoami" })
            #expect(service.UpdateStatus?.State == "completed")

            // `service rollback`: the body is ignored, the specs swap, and the update status says so.
            _ = try await ctl.updateService(id, version: service.Version.Index, spec: MeshAPI.ServiceSpec(), rollback: true)
            service = try await ctl.inspectService(id)
            #expect(service.Spec.TaskTemplate.ContainerSpec?.Image == "meshd/whoami")
            #expect(service.PreviousSpec?.TaskTemplate.ContainerSpec?.Image == "meshd/whoami:v2")
            #expect(service.UpdateStatus?.State == "rollback_started" && service.UpdateStatus?.Message == "manually requested rollback")
            try await c.converge(rounds: 12)
            service = try await ctl.inspectService(id)
            #expect(service.UpdateStatus?.State == "rollback_completed")
            let rolledBack = try await ctl.listTasks(
                TaskFilter(filter(["service": [id], "_up-to-date": ["1"], "desired-state": ["running"]])))
            #expect(rolledBack.count == 2 && rolledBack.allSatisfy { $0.Spec.ContainerSpec?.Image == "meshd/whoami" })

            // `service scale web=5`, then 1: a replicas-only change replaces nothing and starts no rollout, and
            // the finished rollback's status goes (the CLI's progress would otherwise stop at once).
            var scaled = service.Spec
            scaled.Mode = .replicated(5)
            _ = try await ctl.updateService(id, version: service.Version.Index, spec: scaled, rollback: false)
            service = try await ctl.inspectService(id)
            #expect(service.UpdateStatus == nil)
            try await c.converge(rounds: 2)
            service = try await ctl.inspectService(id)
            #expect(service.UpdateStatus == nil)
            #expect(
                try await ctl.listTasks(TaskFilter(filter(["service": [id], "_up-to-date": ["true"], "desired-state": ["running"]]))).count
                    == 5)
            #expect(
                try await ctl.listServices(ServiceFilter(), status: true).first?.ServiceStatus
                    == Service.ServiceStatus(RunningTasks: 5, DesiredTasks: 5))
            scaled.Mode = .replicated(1)
            _ = try await ctl.updateService(id, version: service.Version.Index, spec: scaled, rollback: false)
            try await c.converge(rounds: 2)
            let running = try await ctl.listTasks(TaskFilter(filter(["service": ["web"], "desired-state": ["running"]])))
            #expect(running.map(\.Slot) == [1])
            #expect(
                try await ctl.listServices(ServiceFilter(), status: true).first?.ServiceStatus
                    == Service.ServiceStatus(RunningTasks: 1, DesiredTasks: 1))
        }
    }

    @Test func nodeUpdateDrainRemoveAndLeadership() async throws {
        try await TestCluster.with(workers: 2) { c in
            let ctl = c.controller
            let nodes = try await ctl.listNodes(NodeFilter())
            #expect(nodes.count == 3)
            let me = try #require(nodes.first { $0.ID == c.managerID })
            #expect(me.ManagerStatus == Node.ManagerStatus(Leader: true, Reachability: "reachable", Addr: "192.168.50.1:2377"))
            #expect(me.Description.Hostname == "manager1" && me.Status.State == "ready" && me.Status.Addr == "192.168.50.1")
            // A node's TLSInfo is what it reported holding (the session's heldCertificates), none before.
            #expect(me.Description.TLSInfo == nil)
            _ = try await ctl.withManager { m throws(ClusterError) in try m.recordTLSInfo(m.clusterTLSInfo, nodeID: c.managerID) }
            let reported = try await ctl.inspectNode(c.managerID).Description.TLSInfo
            #expect(reported?.TrustRoot?.contains("BEGIN CERTIFICATE") == true)
            #expect(reported == (try await ctl.inspectSwarm()).cluster.TLSInfo)
            #expect(nodes.filter { $0.ID != c.managerID }.allSatisfy { $0.ManagerStatus == nil && $0.Spec.Role == "worker" })

            _ = try await ctl.createService(webSpec("web", replicas: 3))
            try await c.converge(rounds: 2)
            let w1 = c.workerIDs[0]
            var node = try await ctl.inspectNode("worker1")
            #expect(node.ID == w1)
            #expect(try await ctl.listTasks(TaskFilter(filter(["node": ["worker1"]]))).count == 1)

            // `node update --availability drain --label-add zone=a`: the task on it is shut down and moves.
            let drain = NodeSpec(Labels: ["zone": "a"], Role: "worker", Availability: "drain")
            try await ctl.updateNode(w1, version: node.Version.Index, spec: drain)
            #expect(await engineError { try await ctl.updateNode(w1, version: node.Version.Index, spec: drain) } == .updateOutOfSequence)
            node = try await ctl.inspectNode(String(w1.prefix(8)))
            #expect(node.Spec.Availability == "drain" && node.Spec.Labels == ["zone": "a"])
            try await c.converge(rounds: 3)
            let onW1 = try await ctl.listTasks(TaskFilter(filter(["node": [w1], "desired-state": ["running"]])))
            #expect(onW1.isEmpty)
            #expect(try await ctl.listTasks(TaskFilter(filter(["desired-state": ["running"]]))).count == 3)
            #expect(try await ctl.listServices(ServiceFilter(), status: true).first?.ServiceStatus?.RunningTasks == 3)

            // Filters.
            func ids(_ f: [String: [String]]) async throws -> Set<String> { Set(try await ctl.listNodes(NodeFilter(filter(f))).map(\.ID)) }
            #expect(try await ids(["role": ["manager"]]) == [c.managerID])
            #expect(try await ids(["role": ["worker"]]) == Set(c.workerIDs))
            #expect(try await ids(["node.label": ["zone=a"]]) == [w1])
            #expect(try await ids(["node.label": ["zone=b"]]).isEmpty)
            #expect(try await ids(["name": ["worker"]]) == Set(c.workerIDs))
            #expect(try await ids(["id": [String(w1.prefix(10))]]) == [w1])
            #expect(try await ids(["membership": ["accepted"]]).count == 3)
            #expect(try await ids(["membership": ["pending"]]).isEmpty)

            // Errors with dockerd's text.
            let meNode = try await ctl.inspectNode(c.managerID)
            #expect(
                await engineError {
                    try await ctl.updateNode(
                        c.managerID, version: meNode.Version.Index, spec: NodeSpec(Role: "worker", Availability: "active"))
                } == .demoteLastManager)
            let w2 = c.workerIDs[1]
            #expect(await engineError { try await ctl.removeNode(w2, force: false) } == .nodeNotDown(w2))
            #expect(await engineError { try await ctl.removeNode(c.managerID, force: true) }?.status == 400)
            #expect(await engineError { _ = try await ctl.inspectNode("nosuch") } == .notFound("node nosuch not found"))
            #expect(
                await engineError {
                    try await ctl.updateNode(w2, version: 1, spec: NodeSpec(Role: "captain", Availability: "active"))
                }?.status == 400)

            // `node rm --force` on a live worker; its tasks are rescheduled.
            try await ctl.removeNode(w2, force: true)
            #expect(try await ctl.listNodes(NodeFilter()).count == 2)
            try await c.converge(rounds: 3)
            let placed = try await ctl.listTasks(TaskFilter(filter(["desired-state": ["running"]])))
            #expect(placed.count == 3 && placed.allSatisfy { $0.NodeID == c.managerID })

            // Promoting a worker of a SQLite swarm is refused by name (one manager's file is the whole
            // state), never answered "promoted" while the node stays a worker.
            node = try await ctl.inspectNode(w1)
            let promote = await engineError {
                try await ctl.updateNode(w1, version: node.Version.Index, spec: NodeSpec(Role: "manager", Availability: "active"))
            }
            #expect(promote == .invalidArgument("rpc error: code = FailedPrecondition desc = \(ClusterManager.oneManagerOnly)"))
            let managers = try await ctl.listNodes(NodeFilter(filter(["role": ["manager"]])))
            #expect(managers.map(\.ID) == [c.managerID] && managers.first?.ManagerStatus?.Leader == true)
            #expect(await ctl.swarmInfo(selfAddr: "192.168.50.1").Managers == 1)
            let self1 = try await ctl.inspectNode(c.managerID)
            let demote = await engineError {
                try await ctl.updateNode(c.managerID, version: self1.Version.Index, spec: NodeSpec(Role: "worker", Availability: "active"))
            }
            #expect(
                demote == .invalidArgument("rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm")
            )
        }
    }

    @Test func serviceAndTaskFilters() async throws {
        try await TestCluster.with(workers: 1) { c in
            let ctl = c.controller
            let a = try await ctl.createService(webSpec("alpha", replicas: 2, labels: ["stack": "one"])).ID
            let b = try await ctl.createService(webSpec("beta", labels: ["stack": "two", "edge": ""])).ID
            var g = webSpec("gamma")
            g.Mode = .global
            _ = try await ctl.createService(g)
            try await c.converge(rounds: 2)

            func services(_ f: [String: [String]]) async throws -> [String] {
                try await ctl.listServices(ServiceFilter(filter(f)), status: false).map { $0.Spec.Name ?? "" }.sorted()
            }
            #expect(try await services([:]) == ["alpha", "beta", "gamma"])
            #expect(try await services(["name": ["al", "be"]]) == ["alpha", "beta"])
            #expect(try await services(["id": [String(a.prefix(7))]]) == ["alpha"])
            #expect(try await services(["label": ["stack=two"]]) == ["beta"])
            #expect(try await services(["label": ["edge"]]) == ["beta"])
            #expect(try await services(["label": ["stack"]]) == ["alpha", "beta"])
            #expect(try await services(["mode": ["global"]]) == ["gamma"])
            #expect(try await services(["mode": ["replicated"]]) == ["alpha", "beta"])

            func tasks(_ f: [String: [String]]) async throws -> [SwarmTask] { try await ctl.listTasks(TaskFilter(filter(f))) }
            #expect(try await tasks([:]).count == 5)
            #expect(try await tasks(["service": ["alpha", String(b.prefix(9))]]).count == 3)
            #expect(try await tasks(["name": ["alpha.2"]]).map(\.Slot) == [2])
            #expect(try await tasks(["name": ["gamma.\(c.managerID.prefix(5))"]]).map(\.NodeID) == [c.managerID])
            #expect(try await tasks(["label": ["stack=one"]]).count == 2)
            #expect(try await tasks(["node": ["manager1"], "service": ["gamma"]]).count == 1)
            let one = try #require(try await tasks(["service": ["beta"]]).first)
            #expect(try await tasks(["id": [String(one.ID.prefix(10))]]).map(\.ID) == [one.ID])
            #expect(try await tasks(["desired-state": ["shutdown"]]).isEmpty)
            #expect(try await tasks(["runtime": ["container"]]).count == 5)
            #expect(
                await engineError { _ = try await ctl.listTasks(TaskFilter(filter(["service": ["nosuch"]]))) }
                    == .notFound("service nosuch not found"))
            #expect(
                await engineError { _ = try await ctl.listTasks(TaskFilter(filter(["node": ["nosuch"]]))) }
                    == .notFound("node nosuch not found"))
        }
    }

    @Test func errorsUseDockerdsStatusesAndTexts() async throws {
        try await TestCluster.with { c in
            let ctl = c.controller
            _ = try await ctl.createService(webSpec("web"))
            #expect(await engineError { _ = try await ctl.createService(webSpec("web")) } == .serviceExists("web"))
            #expect(await engineError { _ = try await ctl.inspectService("nosuch") } == .notFound("service nosuch not found"))
            #expect(await engineError { _ = try await ctl.inspectTask("nosuch") } == .notFound("task nosuch not found"))
            #expect(await engineError { try await ctl.removeService("nosuch") } == .notFound("service nosuch not found"))
            #expect(await engineError { _ = try await ctl.inspectService("") } == .notFound("service  not found"))
            // Two IDs that share a prefix: the empty prefix "" is not a reference, a one-character one may be.
            _ = try await ctl.createService(webSpec("web2"))
            let ids = try await ctl.listServices(ServiceFilter(), status: false).map(\.ID)
            let shared = zip(ids[0], ids[1]).prefix { $0 == $1 }.count
            if shared > 0 {
                let prefix = String(ids[0].prefix(shared))
                #expect(
                    await engineError { _ = try await ctl.inspectService(prefix) }
                        == .invalidArgument("service \(prefix) is ambiguous (2 matches found)"))
            }
            // Bad specs: the image, the name, a constraint the scheduler cannot read, a network that is not there.
            #expect(await engineError { _ = try await ctl.createService(webSpec("noimage", image: "")) }?.status == 400)
            #expect(await engineError { _ = try await ctl.createService(webSpec("bad name")) }?.status == 400)
            var constrained = webSpec("c")
            constrained.TaskTemplate.Placement = Placement(Constraints: ["engine.labels.x==y"])
            #expect(await engineError { _ = try await ctl.createService(constrained) }?.status == 400)
            #expect(
                await engineError { _ = try await ctl.createService(webSpec("n", networks: ["nosuch"])) }
                    == .notFound("network nosuch not found"))
            #expect(await engineError { _ = try await ctl.createService(webSpec("i", networks: ["ingress"])) }?.status == 400)
            // A published port another service holds.
            _ = try await ctl.createService(webSpec("p1", ports: [MeshAPI.PortConfig(TargetPort: 80, PublishedPort: 9000)]))
            let taken = await engineError {
                _ = try await ctl.createService(webSpec("p2", ports: [MeshAPI.PortConfig(TargetPort: 80, PublishedPort: 9000)]))
            }
            #expect(taken?.status == 400 && taken?.message.contains("already in use") == true)
            // A service without a name gets one, as dockerd gives it.
            let unnamed = try await ctl.createService(webSpec(""))
            let name = try await ctl.inspectService(unnamed.ID).Spec.Name ?? ""
            #expect(name.split(separator: "_").count == 2)
        }
    }

    /// The control loop wakes on every API write and on `withManager` bodies that write, but not on a
    /// pass that found nothing to do (or the loop that runs it would never rest).
    @Test(.timeLimit(.minutes(1))) func changesWakeTheControlLoop() async throws {
        try await TestCluster.with(workers: 1) { c in
            let ctl = c.controller
            var it = ctl.changes.makeAsyncIterator()
            // The join in the fixture wrote: one wake-up is buffered (newest only).
            #expect(await it.next() != nil)
            _ = try await ctl.createNetwork(NetworkCreateRequest(Name: "demo"))
            #expect(await it.next() != nil)
            _ = try await ctl.createService(webSpec("web", replicas: 2))
            #expect(await it.next() != nil)
            try await c.reconcile()
            #expect(await it.next() != nil)
            let swarm = try await ctl.inspectSwarm()
            try await ctl.updateSwarm(swarm.cluster.Spec, version: swarm.cluster.Version.Index, rotate: SwarmRotation(workerToken: true))
            #expect(await it.next() != nil)
            // Token rotation through withManager changes only the settings, not the object index.
            try await ctl.withManager { m throws(ClusterError) in try m.rotateJoinToken(.manager) }
            #expect(await it.next() != nil)
            try await c.playAgents()
            #expect(await it.next() != nil)

            // Converged: a reconcile pass, reads and failed writes wake nobody.
            try await c.reconcile()
            _ = try await ctl.listTasks(TaskFilter())
            _ = try await ctl.listServices(ServiceFilter(), status: true)
            _ = await engineError { _ = try await ctl.createService(webSpec("web")) }
            _ = try await ctl.read { m throws(ClusterError) in try m.store.snapshot() }
            let stream = ctl.changes
            let woke = await withTaskGroup(of: Bool.self) { g in
                g.addTask {
                    var i = stream.makeAsyncIterator()
                    return await i.next() != nil
                }
                g.addTask {
                    try? await Task.sleep(for: .milliseconds(300))
                    return false
                }
                let first = await g.next() ?? true
                g.cancelAll()
                return first
            }
            #expect(!woke)
        }
    }
}
