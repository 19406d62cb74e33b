import Foundation
import MeshAPI
import MeshCluster
import MeshDaemon
import MeshKernel
import Testing

@Suite struct APIMappingTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    /// Everything the CLI can send, as `service create` with most flags would.
    var richSpec: MeshAPI.ServiceSpec {
        var container = MeshAPI.ContainerSpec(Image: "nginx:1.27", Args: ["-g", "daemon off;"], Env: ["A=1", "B=two"])
        container.Command = ["nginx"]
        container.Labels = ["c": "d"]
        container.Hostname = "web-{{.Task.Slot}}"
        container.Dir = "/srv"
        container.User = "www"
        var port = MeshAPI.PortConfig(Protocol: "udp", TargetPort: 53, PublishedPort: 5353, PublishMode: "host")
        port.Name = "dns"
        return MeshAPI.ServiceSpec(
            Name: "web", Labels: ["tier": "front"],
            TaskTemplate: MeshAPI.TaskSpec(
                ContainerSpec: container,
                RestartPolicy: MeshAPI.RestartPolicy(Condition: "on-failure", Delay: 2_000_000_000, MaxAttempts: 3),
                Placement: Placement(Constraints: ["node.role==worker", "node.labels.zone!=b"]),
                Networks: [NetworkAttachmentConfig(Target: "netid1", Aliases: ["www"])], ForceUpdate: 2),
            Mode: .replicated(4),
            UpdateConfig: MeshAPI.UpdateConfig(
                Parallelism: 2, Delay: 1_000_000_000, FailureAction: "rollback", Monitor: 7_000_000_000,
                MaxFailureRatio: 0.25, Order: "start-first"),
            RollbackConfig: MeshAPI.UpdateConfig(Parallelism: 0, FailureAction: "continue", Order: "stop-first"),
            EndpointSpec: MeshAPI.EndpointSpec(Mode: "vip", Ports: [MeshAPI.PortConfig(TargetPort: 80, PublishedPort: 8080), port]))
    }

    @Test func everyCLIFieldReachesTheClusterSpec() throws {
        let s = try APIMapping.clusterServiceSpec(richSpec)
        #expect(s.name == "web" && s.labels == ["tier": "front"])
        #expect(s.task.image == "nginx:1.27" && s.task.command == ["nginx"] && s.task.args == ["-g", "daemon off;"])
        #expect(s.task.env == ["A=1", "B=two"] && s.task.labels == ["c": "d"] && s.task.hostname == "web-{{.Task.Slot}}")
        #expect(s.task.dir == "/srv" && s.task.user == "www" && s.task.forceUpdate == 2)
        #expect(s.task.restartPolicy == MeshCluster.RestartPolicy(condition: .onFailure, delay: 2_000_000_000, maxAttempts: 3))
        #expect(s.task.constraints == ["node.role==worker", "node.labels.zone!=b"])
        #expect(s.task.networks == [NetworkTarget(target: "netid1", aliases: ["www"])])
        #expect(s.mode == .replicated(replicas: 4))
        #expect(
            s.update
                == MeshCluster.UpdateConfig(
                    parallelism: 2, delay: 1_000_000_000, failureAction: .rollback,
                    monitor: 7_000_000_000, maxFailureRatio: 0.25, order: .startFirst))
        // Parallelism 0 (all at once) stays 0; a zero Monitor takes swarmkit's 5 s as dockerd leaves it unset.
        #expect(
            s.rollback
                == MeshCluster.UpdateConfig(
                    parallelism: 0, delay: 0, failureAction: .continue, monitor: 5_000_000_000,
                    maxFailureRatio: 0, order: .stopFirst))
        #expect(s.endpoint.mode == .vip)
        #expect(
            s.endpoint.ports == [
                MeshCluster.PortConfig(protocol: .tcp, targetPort: 80, publishedPort: 8080, publishMode: .ingress),
                MeshCluster.PortConfig(name: "dns", protocol: .udp, targetPort: 53, publishedPort: 5353, publishMode: .host),
            ])
    }

    /// What `service inspect` returns and the CLI sends back on `update` must store the same spec, or an
    /// update that changes nothing would replace every task.
    @Test func specsRoundTripWithoutChange() throws {
        let minimal = MeshAPI.ServiceSpec(Name: "m", TaskTemplate: MeshAPI.TaskSpec(ContainerSpec: MeshAPI.ContainerSpec(Image: "busybox")))
        for input in [richSpec, minimal, webSpec("w", networks: ["n"], ports: [MeshAPI.PortConfig(TargetPort: 80)])] {
            let stored = try APIMapping.clusterServiceSpec(input)
            let shown = APIMapping.apiServiceSpec(stored)
            let again = try APIMapping.clusterServiceSpec(shown)
            #expect(again == stored)
            #expect(!again.replacesTasks(of: stored))
            // And the normaliser the router runs first changes nothing that matters either.
            #expect(try APIMapping.clusterServiceSpec(try ServiceSpecNormalizer.normalize(shown)) == stored)
        }
        let shown = APIMapping.apiServiceSpec(try APIMapping.clusterServiceSpec(richSpec))
        #expect(shown.TaskTemplate.ContainerSpec?.Image == "nginx:1.27")
        #expect(shown.Mode?.Replicated?.Replicas == 4)
        #expect(shown.EndpointSpec?.Ports?.first?.PublishedPort == 8080)
        #expect(shown.TaskTemplate.Runtime == "container")
    }

    @Test func absentFieldsTakeDockersDefaults() throws {
        var spec = MeshAPI.ServiceSpec(Name: "d", TaskTemplate: MeshAPI.TaskSpec(ContainerSpec: MeshAPI.ContainerSpec(Image: "x")))
        var s = try APIMapping.clusterServiceSpec(spec)
        #expect(s.mode == .replicated(replicas: 1) && s.update == nil && s.rollback == nil && s.task.restartPolicy == nil)
        #expect(s.endpoint == MeshCluster.EndpointSpec())
        spec.Mode = MeshAPI.ServiceMode(Replicated: .init())
        spec.TaskTemplate.RestartPolicy = MeshAPI.RestartPolicy()
        spec.UpdateConfig = MeshAPI.UpdateConfig()
        spec.EndpointSpec = MeshAPI.EndpointSpec(Ports: [MeshAPI.PortConfig(Protocol: nil, TargetPort: 80, PublishMode: nil)])
        s = try APIMapping.clusterServiceSpec(spec)
        #expect(s.mode == .replicated(replicas: 1))
        #expect(s.task.restartPolicy == MeshCluster.RestartPolicy(condition: .any, delay: 5_000_000_000, maxAttempts: 0))
        #expect(
            s.update
                == MeshCluster.UpdateConfig(
                    parallelism: 0, delay: 0, failureAction: .pause, monitor: 5_000_000_000,
                    maxFailureRatio: 0, order: .stopFirst))
        #expect(s.endpoint.ports == [MeshCluster.PortConfig(protocol: .tcp, targetPort: 80, publishedPort: 0, publishMode: .ingress)])
        spec.Mode = .global
        #expect(try APIMapping.clusterServiceSpec(spec).mode == .global)
    }

    @Test func outOfRangeValuesAreRefusedWithDockersStatus() throws {
        func status(_ change: (inout MeshAPI.ServiceSpec) -> Void) -> Int? {
            var spec = webSpec("v")
            change(&spec)
            // The whole pipeline: the normaliser's form rules, then the cluster model's meaning rules.
            do {
                try APIMapping.clusterServiceSpec(spec).validate()
                return nil
            } catch let e as EngineError {
                return e.status
            } catch let e as ClusterError {
                return APIMapping.engineError(e).status
            } catch { return -1 }
        }
        #expect(status { $0.Mode = .replicated(APIMapping.maxReplicas) } == nil)
        #expect(status { $0.Mode = .replicated(APIMapping.maxReplicas + 1) } == 400)
        #expect(status { $0.Mode = .replicated(.max) } == 400)
        #expect(status { $0.Mode = MeshAPI.ServiceMode(Replicated: .init(Replicas: 1), Global: .init()) } == 400)
        #expect(status { $0.Mode = MeshAPI.ServiceMode(GlobalJob: .init()) } == nil)
        #expect(status { $0.Mode = MeshAPI.ServiceMode(ReplicatedJob: .init()) } == nil)
        #expect(status { $0.Mode = MeshAPI.ServiceMode(ReplicatedJob: .init(TotalCompletions: APIMapping.maxReplicas + 1)) } == 400)
        #expect(status { $0.Mode = MeshAPI.ServiceMode(ReplicatedJob: .init(MaxConcurrent: .max)) } == 400)
        #expect(status { $0.Mode = MeshAPI.ServiceMode(Global: .init(), GlobalJob: .init()) } == 400)
        // dockerd's defaults: MaxConcurrent 1, TotalCompletions = MaxConcurrent.
        var job = webSpec("job")
        job.Mode = MeshAPI.ServiceMode(ReplicatedJob: .init(MaxConcurrent: 3))
        #expect(try APIMapping.clusterServiceSpec(job).mode == .replicatedJob(maxConcurrent: 3, totalCompletions: 3))
        job.Mode = MeshAPI.ServiceMode(ReplicatedJob: .init())
        #expect(try APIMapping.clusterServiceSpec(job).mode == .replicatedJob(maxConcurrent: 1, totalCompletions: 1))
        let back = APIMapping.apiServiceSpec(try APIMapping.clusterServiceSpec(job)).Mode
        #expect(back == MeshAPI.ServiceMode(ReplicatedJob: .init(MaxConcurrent: 1, TotalCompletions: 1)))
        #expect(status { $0.UpdateConfig?.Delay = -1 } == 400)
        #expect(status { $0.UpdateConfig?.Monitor = .min } == 400)
        #expect(status { $0.UpdateConfig?.MaxFailureRatio = 1.5 } == 400)
        #expect(status { $0.UpdateConfig?.MaxFailureRatio = .nan } == 400)
        #expect(status { $0.UpdateConfig?.Parallelism = .max } == nil)
        #expect(status { $0.RollbackConfig = MeshAPI.UpdateConfig(FailureAction: "explode") } == 400)
        #expect(status { $0.UpdateConfig?.Order = "sideways" } == 400)
        #expect(status { $0.TaskTemplate.RestartPolicy = MeshAPI.RestartPolicy(Condition: "sometimes") } == 400)
        #expect(status { $0.TaskTemplate.RestartPolicy = MeshAPI.RestartPolicy(Delay: -5) } == 400)
        #expect(status { $0.TaskTemplate.RestartPolicy = MeshAPI.RestartPolicy(MaxAttempts: .max) } == nil)
        #expect(status { $0.EndpointSpec?.Mode = "anycast" } == 400)
        #expect(status { $0.EndpointSpec?.Ports = [MeshAPI.PortConfig(TargetPort: 0)] } == 400)
        #expect(status { $0.EndpointSpec?.Ports = [MeshAPI.PortConfig(TargetPort: 65_536)] } == 400)
        #expect(status { $0.EndpointSpec?.Ports = [MeshAPI.PortConfig(TargetPort: 80, PublishedPort: .max)] } == 400)
        #expect(status { $0.EndpointSpec?.Ports = [MeshAPI.PortConfig(Protocol: "icmp", TargetPort: 80)] } == 400)
        #expect(status { $0.EndpointSpec?.Ports = [MeshAPI.PortConfig(TargetPort: 80, PublishMode: "everywhere")] } == 400)
    }

    @Test func clusterErrorsGetDockerdsStatusAndText() {
        let cases: [(ClusterError, Int, String)] = [
            (.notFound(objectKind: "service", reference: "nosuch"), 404, "service nosuch not found"),
            (.notFound(objectKind: "network", reference: "x"), 404, "network x not found"),
            (.ambiguous(objectKind: "task", reference: "a", matches: 2), 400, "task a is ambiguous (2 matches found)"),
            (
                .nameConflict(objectKind: "service", name: "web"), 409,
                "rpc error: code = AlreadyExists desc = name conflicts with an existing object: service web already exists"
            ),
            (.nameConflict(objectKind: "network", name: "demo"), 409, "network with name demo already exists"),
            (.idConflict(objectKind: "task", id: "t"), 409, "rpc error: code = AlreadyExists desc = task t already exists"),
            (
                .outOfSequence(objectKind: "service", id: "s", expected: 3, got: 2), 500,
                "rpc error: code = Unknown desc = update out of sequence"
            ),
            (.invalidArgument("bad"), 400, "rpc error: code = InvalidArgument desc = bad"),
            (
                .failedPrecondition("service s does not have a previous spec"), 400,
                "rpc error: code = FailedPrecondition desc = service s does not have a previous spec"
            ),
            (
                .unimplemented("renaming services is not supported"), 501,
                "rpc error: code = Unimplemented desc = renaming services is not supported"
            ),
            (
                .exhausted("no free dynamic ingress port for tcp"), 500,
                "rpc error: code = ResourceExhausted desc = no free dynamic ingress port for tcp"
            ),
            (.storage("disk"), 500, "disk"),
        ]
        for (cluster, status, message) in cases {
            let e = APIMapping.engineError(cluster)
            #expect(e.status == status, "\(cluster)")
            #expect(e.message == message)
        }
        #expect(APIMapping.engineError(.failedPrecondition("node n is not down and can't be removed")) == .nodeNotDown("n"))
        #expect(APIMapping.engineError(.failedPrecondition("attempting to demote the last manager of the swarm")) == .demoteLastManager)
        #expect(ClusterController.engineError(.outOfSequence(objectKind: "node", id: "n", expected: 1, got: 0)) == .updateOutOfSequence)
    }

    @Test func nodesShowRoleStatusAndLeadership() {
        var m = ClusterNode(
            id: "m1", hostname: "alpha", role: .manager, state: .ready, addr: "10.1.0.1", labels: ["a": "b"],
            managerAddr: "10.1.0.1:2377", now: t0)
        m.version = 7
        m.description = NodeDescription(
            os: "linux", architecture: "x86_64", nanoCPUs: 2_000_000_000, memoryBytes: 1 << 30,
            engineVersion: "0.3.0")
        let tls = MeshAPI.TLSInfo(TrustRoot: "pem", CertIssuerSubject: "c3Vi", CertIssuerPublicKey: "a2V5")
        let leader = APIMapping.node(m, isLeader: true, tlsInfo: tls)
        #expect(leader.ID == "m1" && leader.Version.Index == 7 && leader.Spec.Role == "manager" && leader.Spec.Availability == "active")
        #expect(leader.Spec.Labels == ["a": "b"] && leader.Description.Hostname == "alpha")
        #expect(leader.Description.Engine.EngineVersion == "0.3.0" && leader.Description.Resources.NanoCPUs == 2_000_000_000)
        #expect(leader.Description.TLSInfo == tls)
        #expect(leader.Status.State == "ready" && leader.Status.Addr == "10.1.0.1" && leader.Status.Message == nil)
        #expect(leader.ManagerStatus == Node.ManagerStatus(Leader: true, Reachability: "reachable", Addr: "10.1.0.1:2377"))

        m.state = .down
        m.stateMessage = "heartbeat failure"
        let follower = APIMapping.node(m, isLeader: false, tlsInfo: nil)
        #expect(follower.ManagerStatus?.Leader == nil && follower.ManagerStatus?.Reachability == "unreachable")
        #expect(follower.Status.State == "down" && follower.Status.Message == "heartbeat failure")

        let w = ClusterNode(id: "w1", hostname: "beta", availability: .drain, state: .ready, addr: "10.1.0.2", now: t0)
        let worker = APIMapping.node(w, isLeader: false, tlsInfo: nil)
        #expect(worker.ManagerStatus == nil && worker.Spec.Role == "worker" && worker.Spec.Availability == "drain")

        #expect(throws: EngineError.self) { try APIMapping.nodeChange(NodeSpec(Role: "boss", Availability: "active")) }
        #expect(throws: EngineError.self) { try APIMapping.nodeChange(NodeSpec(Role: "worker", Availability: "asleep")) }
        let change = try? APIMapping.nodeChange(NodeSpec(Labels: nil, Role: "manager", Availability: "pause"))
        #expect(change?.role == .manager && change?.availability == .pause && change?.labels == [:])
    }

    @Test func tasksCarryStatusAttachmentsAndHostPorts() {
        var t = ClusterTask(
            id: "t1", serviceID: "s1", slot: 2, nodeID: "n1", spec: MeshCluster.TaskSpec(image: "busybox", args: ["sh"]),
            specVersion: 1, now: t0)
        t.version = 12
        t.status = TaskStatus(state: .failed, timestamp: t0.addingTimeInterval(5), message: "started", err: "task: non-zero exit (1)")
        t.desiredState = .shutdown
        t.networks = [
            NetworkAttachment(networkID: "net1", address: "10.0.1.7/24"), NetworkAttachment(networkID: "gone", address: "10.0.9.2/24"),
        ]
        t.hostPorts = [MeshCluster.PortConfig(protocol: .tcp, targetPort: 80, publishedPort: 8081, publishMode: .host)]
        let api = APIMapping.task(t, networkNames: ["net1": "demo"])
        #expect(api.ID == "t1" && api.Version.Index == 12 && api.ServiceID == "s1" && api.Slot == 2 && api.NodeID == "n1")
        #expect(api.Spec.ContainerSpec?.Image == "busybox" && api.Spec.ContainerSpec?.Args == ["sh"])
        #expect(api.Status.State == "failed" && api.Status.Message == "started" && api.Status.Err == "task: non-zero exit (1)")
        #expect(api.Status.Timestamp == t0.addingTimeInterval(5) && api.DesiredState == "shutdown")
        #expect(
            api.Status.PortStatus?.Ports == [MeshAPI.PortConfig(Protocol: "tcp", TargetPort: 80, PublishedPort: 8081, PublishMode: "host")])
        #expect(api.NetworksAttachments?.map(\.Network.Spec.Name) == ["demo", "gone"])
        #expect(api.NetworksAttachments?.map(\.Addresses) == [["10.0.1.7/24"], ["10.0.9.2/24"]])
        t.networks = []
        t.hostPorts = []
        t.status.err = ""
        let bare = APIMapping.task(t, networkNames: [:])
        #expect(bare.NetworksAttachments == nil && bare.Status.PortStatus == nil && bare.Status.Err == nil)
    }

    @Test func networksShowOverlayFieldsAndRequestsAreChecked() throws {
        var n = ClusterNetwork(
            id: "n1", name: "demo", vni: 4097, subnet: IPPrefix("10.0.1.0/24")!, gateway: IPAddress("10.0.1.1")!,
            attachable: true, labels: ["k": "v"], options: ["encrypted": ""], now: t0)
        n.version = 3
        let r = APIMapping.network(n)
        #expect(r.Name == "demo" && r.Id == "n1" && r.Created == t0 && r.Scope == "swarm" && r.Driver == "overlay")
        #expect(r.IPAM.Config == [IPAMConfig(Subnet: "10.0.1.0/24", Gateway: "10.0.1.1")] && r.IPAM.Driver == "default")
        #expect(r.Attachable && !r.Ingress && !r.Internal && r.Labels == ["k": "v"])
        #expect(r.Options == ["encrypted": "", "com.docker.network.driver.overlay.vxlanid_list": "4097"])

        let request = try APIMapping.networkRequest(
            NetworkCreateRequest(
                Name: "x", IPAM: IPAM(Driver: "default", Config: [IPAMConfig(Subnet: "10.20.0.0/16", Gateway: "10.20.0.254")]),
                Internal: true, Attachable: true, Options: ["encrypted": ""], Labels: ["a": "b"]))
        #expect(
            request
                == NetworkRequest(
                    name: "x", subnet: IPPrefix("10.20.0.0/16"), gateway: IPAddress("10.20.0.254"), attachable: true,
                    internal: true, labels: ["a": "b"], options: ["encrypted": ""]))
        // The stack client sends `IPAM:{Driver:""}` and no config.
        #expect(
            try APIMapping.networkRequest(NetworkCreateRequest(Name: "s", Driver: nil, IPAM: IPAM(Driver: ""))) == NetworkRequest(name: "s")
        )

        func refused(_ r: NetworkCreateRequest) -> Bool {
            do {
                _ = try APIMapping.networkRequest(r)
                return false
            } catch { return error.status == 400 }
        }
        #expect(refused(NetworkCreateRequest(Name: "b", Driver: "bridge")))
        #expect(refused(NetworkCreateRequest(Name: "b", IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.1.0.0")]))))
        #expect(refused(NetworkCreateRequest(Name: "b", IPAM: IPAM(Config: [IPAMConfig(Subnet: "fd00::/64")]))))
        #expect(refused(NetworkCreateRequest(Name: "b", IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.1.0.0/24", IPRange: "10.1.0.0/25")]))))
        #expect(refused(NetworkCreateRequest(Name: "b", IPAM: IPAM(Config: [IPAMConfig(Gateway: "10.1.0.1")]))))
        #expect(
            refused(
                NetworkCreateRequest(Name: "b", IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.1.0.0/24"), IPAMConfig(Subnet: "10.2.0.0/24")])))
        )
        #expect(refused(NetworkCreateRequest(Name: "b", IPAM: IPAM(Driver: "dhcp"))))
        #expect(refused(NetworkCreateRequest(Name: "b", Options: ["com.docker.network.driver.overlay.vxlanid_list": "5000"])))
        var v6 = NetworkCreateRequest(Name: "b")
        v6.EnableIPv6 = true
        #expect(refused(v6))  // --ipv6 without its subnet: meshd has no IPv6 pool
        #expect(refused(NetworkCreateRequest(Name: "")))

        // Dual stack: one IPv4 and one IPv6 subnet (the IPv4 one may be left to the allocator).
        var dual = NetworkCreateRequest(
            Name: "d", IPAM: IPAM(Config: [IPAMConfig(Subnet: "10.77.0.0/24"), IPAMConfig(Subnet: "fd00:77::/64")]))
        dual.EnableIPv6 = true
        #expect(
            try APIMapping.networkRequest(dual)
                == NetworkRequest(name: "d", subnet: IPPrefix("10.77.0.0/24"), subnet6: IPPrefix("fd00:77::/64")))
        var only6 = NetworkCreateRequest(Name: "d", IPAM: IPAM(Config: [IPAMConfig(Subnet: "fd00:77::/64")]))
        only6.EnableIPv6 = true
        #expect(try APIMapping.networkRequest(only6).subnet == nil)
        var gateway6 = only6
        gateway6.IPAM = IPAM(Config: [IPAMConfig(Subnet: "fd00:77::/64", Gateway: "fd00:77::1")])
        #expect(refused(gateway6))
        var noFlag = dual
        noFlag.EnableIPv6 = nil
        #expect(refused(noFlag))
        var noV4 = dual
        noV4.EnableIPv4 = false
        #expect(refused(noV4))

        var n6 = ClusterNetwork(id: "n6", name: "d", vni: 4100, subnet: IPPrefix("10.77.0.0/24")!, gateway: IPAddress("10.77.0.1")!)
        n6.subnet6 = IPPrefix("fd00:77::/64")
        let shown = APIMapping.network(n6)
        #expect(shown.EnableIPv6 && shown.IPAM.Config.map { $0.map(\.Subnet) } == ["10.77.0.0/24", "fd00:77::/64"])
        // A task's IPv6 address: the prefix with its IPv4 host part.
        #expect(
            IPPrefix("fd00:77::/64")!.embedding(hostOf: IPAddress("10.77.0.12")!, in: IPPrefix("10.77.0.0/24")!) == IPAddress("fd00:77::c"))
        #expect(
            IPPrefix("fd00:77::/96")!.embedding(hostOf: IPAddress("10.77.1.2")!, in: IPPrefix("10.77.0.0/16")!) == IPAddress("fd00:77::102")
        )
        #expect(IPPrefix("fd00:77::/100")!.embedding(hostOf: IPAddress("10.77.0.12")!, in: IPPrefix("10.77.0.0/24")!) == nil)
        #expect(IPPrefix("fd00:77::/64")!.embedding(hostOf: IPAddress("10.78.0.12")!, in: IPPrefix("10.77.0.0/24")!) == nil)
    }
}
