import Foundation
import MeshAPI

extension InMemoryEngine {
    func service(_ ref: String) throws(EngineError) -> Int {
        try NameResolver.resolve(
            ref, kind: "service", in: s.services.indices, id: { s.services[$0].ID }, name: { s.services[$0].Spec.Name })
    }

    /// What a backend does first (EngineBackend): normalise once, then turn network names into IDs.
    func prepared(_ input: ServiceSpec) async throws(EngineError) -> ServiceSpec {
        var spec = try ServiceSpecNormalizer.normalize(input)
        if let nets = spec.TaskTemplate.Networks {
            var resolved: [NetworkAttachmentConfig] = []
            for var n in nets {
                n.Target = try await inspectNetwork(n.Target, scope: "swarm").Id
                resolved.append(n)
            }
            spec.TaskTemplate.Networks = resolved
        }
        return spec
    }

    func createService(_ input: ServiceSpec) async throws(EngineError) -> ServiceCreateResponse {
        try requireManager()
        var spec = try await prepared(input)
        let name = spec.Name ?? ""
        if name.isEmpty { spec.Name = "svc_\(Self.randomID(6))" }
        if s.services.contains(where: { $0.Spec.Name == spec.Name }) { throw .serviceExists(spec.Name!) }
        let now = Date()
        var service = Service(ID: Self.randomID(), Version: bump(), CreatedAt: now, UpdatedAt: now, Spec: spec)
        service.Endpoint = endpoint(for: spec, previous: nil)
        s.services.append(service)
        reconcile(service)
        return ServiceCreateResponse(ID: service.ID)
    }

    /// Resolved ports (published ports 0 get one from 30000 on) and one VIP per network.
    func endpoint(for spec: ServiceSpec, previous: Service.Endpoint?) -> Service.Endpoint {
        var used = Set(s.services.flatMap { $0.Endpoint?.Ports ?? [] }.compactMap(\.PublishedPort))
        var next: UInt32 = 30000
        let ports = (spec.EndpointSpec?.Ports ?? []).map { p -> PortConfig in
            var p = p
            if p.PublishMode == "ingress", (p.PublishedPort ?? 0) == 0 {
                while used.contains(next) { next += 1 }
                p.PublishedPort = next
                used.insert(next)
            }
            return p
        }
        var vips: [Service.VirtualIP] = []
        if spec.EndpointSpec?.Mode == "vip" {
            let netIDs =
                (ports.contains { $0.PublishMode == "ingress" } ? [s.networks.first { $0.Ingress }?.Id].compactMap { $0 } : [])
                + (spec.TaskTemplate.Networks ?? []).map(\.Target)
            for (k, id) in netIDs.enumerated() {
                let subnet = s.networks.first { $0.Id == id }?.IPAM.Config?.first?.Subnet ?? "10.0.0.0/24"
                let base = subnet.split(separator: "/")[0].split(separator: ".").prefix(3).joined(separator: ".")
                vips.append(.init(NetworkID: id, Addr: "\(base).\(2 + k + s.services.count)/24"))
            }
        }
        return Service.Endpoint(Spec: spec.EndpointSpec, Ports: ports, VirtualIPs: vips)
    }

    func listServices(_ filter: ServiceFilter, status: Bool) async throws(EngineError) -> [Service] {
        try requireManager()
        return s.services.filter(filter.matches).map { svc in
            var svc = svc
            if status {
                let mine = s.tasks.filter { $0.ServiceID == svc.ID && $0.DesiredState == "running" }
                let running = mine.filter { $0.Status.State == "running" }.count
                let desired = svc.Spec.Mode?.Replicated?.Replicas ?? UInt64(mine.count)
                svc.ServiceStatus = .init(RunningTasks: UInt64(running), DesiredTasks: desired)
            }
            return svc
        }
    }

    func inspectService(_ ref: String) async throws(EngineError) -> Service {
        try requireManager()
        return s.services[try service(ref)]
    }

    func updateService(_ ref: String, version: UInt64, spec input: ServiceSpec, rollback: Bool) async throws(EngineError)
        -> ServiceUpdateResponse
    {
        try requireManager()
        let spec = rollback ? input : try await prepared(input)
        let i = try service(ref)
        guard s.services[i].Version.Index == version else { throw .updateOutOfSequence }
        var svc = s.services[i]
        let old = svc.Spec
        if rollback {
            guard let previous = svc.PreviousSpec else { throw .noPreviousSpec(svc.ID) }
            svc.Spec = previous
            svc.PreviousSpec = old
            svc.UpdateStatus = .init(State: "rollback_completed", StartedAt: Date(), CompletedAt: Date(), Message: "rollback completed")
        } else {
            guard spec.Name == old.Name else {
                throw .notImplemented("rpc error: code = Unimplemented desc = renaming services is not supported")
            }
            guard spec.Mode?.name == old.Mode?.name else {
                throw .notImplemented("rpc error: code = Unimplemented desc = service mode change is not allowed")
            }
            svc.PreviousSpec = old
            svc.Spec = spec
            svc.UpdateStatus =
                old.TaskTemplate == spec.TaskTemplate
                ? svc.UpdateStatus
                : .init(State: "completed", StartedAt: Date(), CompletedAt: Date(), Message: "update completed")
        }
        svc.Version = bump()
        svc.UpdatedAt = Date()
        svc.Endpoint = endpoint(for: svc.Spec, previous: svc.Endpoint)
        s.services[i] = svc
        reconcile(svc)
        return ServiceUpdateResponse()
    }

    func removeService(_ ref: String) async throws(EngineError) {
        try requireManager()
        let i = try service(ref)
        let id = s.services[i].ID
        s.services.remove(at: i)
        s.tasks.removeAll { $0.ServiceID == id }
    }

    /// Shuts down tasks of an older template or beyond the replica count and starts the missing ones.
    func reconcile(_ svc: Service) {
        let now = Date()
        for k in s.tasks.indices where s.tasks[k].ServiceID == svc.ID && s.tasks[k].DesiredState == "running" {
            let beyond = svc.Spec.Mode?.Replicated.map { UInt64(s.tasks[k].Slot) > ($0.Replicas ?? 1) } ?? false
            if s.tasks[k].Spec != svc.Spec.TaskTemplate || beyond {
                s.tasks[k].DesiredState = "shutdown"
                s.tasks[k].Status = .init(Timestamp: now, State: "shutdown", Message: "shutdown")
                s.tasks[k].Version = bump()
            }
        }
        let live = s.tasks.filter { $0.ServiceID == svc.ID && $0.DesiredState == "running" }
        let slots: [Int]
        if let replicas = svc.Spec.Mode?.Replicated?.Replicas {
            slots = (1...max(1, Int(replicas))).filter { slot in replicas > 0 && !live.contains { $0.Slot == slot } }
        } else {
            slots = live.isEmpty ? [0] : []
        }
        for slot in slots {
            let id = Self.randomID()
            let attachments = (svc.Spec.TaskTemplate.Networks ?? []).compactMap { n -> SwarmTask.NetworkAttachment? in
                guard let net = s.networks.first(where: { $0.Id == n.Target }) else { return nil }
                return .init(Network: .init(ID: net.Id, name: net.Name), Addresses: ["10.0.\(s.nextSubnet).\(10 + slot)/24"])
            }
            let hostPorts = (svc.Spec.EndpointSpec?.Ports ?? []).filter { $0.PublishMode == "host" }
            s.tasks.append(
                SwarmTask(
                    ID: id, Version: bump(), CreatedAt: now, UpdatedAt: now, Spec: svc.Spec.TaskTemplate, ServiceID: svc.ID,
                    Slot: slot, NodeID: s.selfID,
                    Status: .init(
                        Timestamp: now, State: "running", Message: "started",
                        ContainerStatus: .init(ContainerID: Self.randomID(64), PID: 1000 + slot),
                        PortStatus: .init(Ports: hostPorts.isEmpty ? nil : hostPorts)),
                    DesiredState: "running", NetworksAttachments: attachments))
            s.logs[svc.ID, default: []] += [
                LogMessage(
                    stream: .stdout, timestamp: now, line: "task \(slot) listening", serviceID: svc.ID, nodeID: s.selfID, taskID: id),
                LogMessage(
                    stream: .stderr, timestamp: now, line: "task \(slot) warming up", serviceID: svc.ID, nodeID: s.selfID, taskID: id),
            ]
        }
    }

    func serviceLogs(_ ref: String, options: LogOptions) async throws(EngineError) -> AsyncStream<LogMessage> {
        try requireManager()
        let svc = s.services[try service(ref)]
        var lines = s.logs[svc.ID] ?? []
        if let tail = options.tail { lines = Array(lines.suffix(tail)) }
        let snapshot = lines
        guard options.follow else {
            return AsyncStream { c in
                for l in snapshot { c.yield(l) }
                c.finish()
            }
        }
        // Following: the stream stays open (no new lines in this engine) until the reader goes away.
        s.followers += 1
        return AsyncStream { c in
            for l in snapshot { c.yield(l) }
            c.onTermination = { _ in Task { await self.followerGone() } }
        }
    }

    func followerGone() { s.followers -= 1 }

    // MARK: tasks

    func listTasks(_ filter: TaskFilter) async throws(EngineError) -> [SwarmTask] {
        try requireManager()
        var serviceIDs: Set<String>?
        if !filter.services.isEmpty {
            var ids = Set<String>()
            for ref in filter.services { ids.insert(s.services[try service(ref)].ID) }
            serviceIDs = ids
        }
        var nodeIDs: Set<String>?
        if !filter.nodes.isEmpty {
            var ids = Set<String>()
            for ref in filter.nodes { ids.insert(s.nodes[try node(ref)].ID) }
            nodeIDs = ids
        }
        return s.tasks.filter { t in
            let svc = s.services.first { $0.ID == t.ServiceID }
            return filter.matches(t, service: svc, serviceIDs: serviceIDs, nodeIDs: nodeIDs, isUpToDate: svc?.Spec.TaskTemplate == t.Spec)
        }
    }

    func inspectTask(_ ref: String) async throws(EngineError) -> SwarmTask {
        try requireManager()
        return try NameResolver.resolve(ref, kind: "task", in: s.tasks, id: \.ID, name: { _ in nil })
    }

    // MARK: networks

    func createNetwork(_ request: NetworkCreateRequest) async throws(EngineError) -> NetworkCreateResponse {
        try requireManager()
        if s.networks.contains(where: { $0.Name == request.Name }) { throw .networkExists(request.Name) }
        s.nextSubnet += 1
        let subnet = request.IPAM?.Config?.first?.Subnet ?? "10.0.\(s.nextSubnet).0/24"
        let gateway = request.IPAM?.Config?.first?.Gateway ?? subnet.replacingOccurrences(of: ".0/24", with: ".1")
        var options = request.Options ?? [:]
        options["com.docker.network.driver.overlay.vxlanid_list"] = String(4096 + s.nextSubnet)
        let net = NetworkResource(
            Name: request.Name, Id: Self.randomID(), Created: Date(),
            IPAM: IPAM(Config: [IPAMConfig(Subnet: subnet, Gateway: gateway)]), Internal: request.Internal ?? false,
            Attachable: request.Attachable ?? false, Ingress: request.Ingress ?? false, Options: options,
            Labels: request.Labels ?? [:])
        s.networks.append(net)
        return NetworkCreateResponse(Id: net.Id)
    }

    func inUse(_ net: NetworkResource) -> String? {
        s.services.first { svc in
            (svc.Spec.TaskTemplate.Networks ?? []).contains { $0.Target == net.Id }
                || (net.Ingress && (svc.Endpoint?.Ports ?? []).contains { $0.PublishMode == "ingress" })
        }?.Spec.Name
    }

    func listNetworks(_ filter: NetworkFilter) async throws(EngineError) -> [NetworkResource] {
        try requireManager()
        return s.networks.filter { filter.matches($0, inUse: inUse($0) != nil) }
    }

    func inspectNetwork(_ ref: String, scope: String?) async throws(EngineError) -> NetworkResource {
        try requireManager()
        return try NameResolver.resolve(ref, kind: "network", in: s.networks, id: \.Id, name: \.Name)
    }

    func removeNetwork(_ ref: String) async throws(EngineError) {
        try requireManager()
        let net = try NameResolver.resolve(ref, kind: "network", in: s.networks, id: \.Id, name: \.Name)
        if let user = inUse(net) {
            throw .invalidArgument("rpc error: code = FailedPrecondition desc = network \(net.Id) is in use by service \(user)")
        }
        s.networks.removeAll { $0.Id == net.Id }
    }

    func pruneNetworks() async throws(EngineError) -> [String] {
        try requireManager()
        let gone = s.networks.filter { !$0.Ingress && inUse($0) == nil }
        s.networks.removeAll { n in gone.contains { $0.Id == n.Id } }
        return gone.map(\.Name)
    }

    func distributionInspect(_ image: String) async throws(EngineError) -> DistributionInspect {
        throw .notFound("meshd resolves images from its catalogue, not a registry: \(image)")
    }
}
