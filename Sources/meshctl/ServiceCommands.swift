import ArgumentParser
import Foundation
import MeshAPI

struct ServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service", abstract: "Manage swarm services.",
        subcommands: [
            ServiceCreate.self, ServiceList.self, ServicePS.self, ServiceInspect.self, ServiceScale.self, ServiceUpdate.self,
            ServiceRollback.self, ServiceRemove.self, ServiceLogs.self,
        ])
}

struct ServiceCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a new service.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Service name.") var name: String?
    @Option(help: "Number of tasks.") var replicas: UInt64?
    @Option(help: "Service mode (replicated, global).") var mode = "replicated"
    @Option(name: .shortAndLong, help: "Publish a port as a node port ([PUBLISHED:]TARGET[/PROTO] or mode=…,target=…).") var publish:
        [String] = []
    @Option(help: "Network attachments.") var network: [String] = []
    @Option(name: .shortAndLong, help: "Set environment variables (K=V).") var env: [String] = []
    @Option(help: "Service labels (K=V).") var label: [String] = []
    @Option(help: "Endpoint mode (vip or dnsrr).") var endpointMode = "vip"
    @Option(help: "Placement constraints.") var constraint: [String] = []
    @Option(help: "Restart when condition is met (none, on-failure, any).") var restartCondition: String?
    @OptionGroup var update: UpdatePolicyOptions
    @Flag(name: .shortAndLong, help: "Exit immediately instead of waiting for the service to converge.") var detach = false
    @Flag(name: .shortAndLong, help: "Suppress progress output.") var quiet = false
    @Argument var image: String
    @Argument(parsing: .captureForPassthrough) var args: [String] = []

    func validate() throws {
        guard mode == "replicated" || mode == "global" else { throw ValidationError("invalid mode \(mode): replicated or global") }
        if mode == "global", replicas != nil { throw ValidationError("replicas can only be used with replicated mode") }
    }

    func run() async throws {
        try await reporting {
            let client = try global.client()
            var container = ContainerSpec(Image: image, Args: args.isEmpty ? nil : args, Env: env.isEmpty ? nil : env)
            container.Init = false
            let labels = Dictionary(
                label.map { l -> (String, String) in
                    let kv = l.split(separator: "=", maxSplits: 1).map(String.init)
                    return (kv.first ?? "", kv.count > 1 ? kv[1] : "")
                }, uniquingKeysWith: { _, b in b })
            let task = TaskSpec(
                ContainerSpec: container,
                RestartPolicy: restartCondition.map { RestartPolicy(Condition: $0, Delay: .seconds(5), MaxAttempts: 0) },
                Placement: Placement(Constraints: constraint.isEmpty ? nil : constraint),
                Networks: network.isEmpty ? nil : network.map { NetworkAttachmentConfig(Target: $0) }, ForceUpdate: 0)
            let ports = try publish.map(parsePublish)
            let spec = ServiceSpec(
                Name: name, Labels: labels, TaskTemplate: task,
                Mode: mode == "global" ? .global : ServiceMode(Replicated: .init(Replicas: replicas)),
                UpdateConfig: update.apply(to: nil),
                EndpointSpec: EndpointSpec(Mode: endpointMode, Ports: ports.isEmpty ? nil : ports))
            let created = try await client.post(ServiceCreateResponse.self, "/services/create", body: spec)
            for w in created.Warnings ?? [] { printErr(w) }
            print(created.ID)
            if !detach { try await ServiceProgress(client: client, ref: created.ID, quiet: quiet).wait() }
        }
    }
}

/// GET the service, change its spec, POST it back with the version read.
func updateServiceSpec(
    _ client: EngineClient, _ ref: String, rollback: Bool = false,
    _ change: (inout ServiceSpec) throws -> Void
) async throws -> Service {
    let service = try await client.get(Service.self, apiPath("services", ref), query: [("insertDefaults", "false")])
    var spec = service.Spec
    try change(&spec)
    var query = [("version", String(service.Version.Index))]
    if rollback { query.insert(("rollback", "previous"), at: 0) }
    let answer = try await client.post(ServiceUpdateResponse.self, "/services/\(service.ID)/update", query: query, body: spec)
    for w in answer.Warnings ?? [] { printErr(w) }
    return service
}

struct ServiceScale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scale", abstract: "Scale one or multiple replicated services.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Exit immediately instead of waiting for the service to converge.") var detach = false
    @Argument(help: "SERVICE=REPLICAS") var scales: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            var failed = false
            for item in scales {
                let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2, let n = UInt64(kv[1]) else {
                    printErr("invalid scale specifier '\(item)'.\nSee 'meshctl service scale --help'.")
                    failed = true
                    continue
                }
                do {
                    _ = try await updateServiceSpec(client, kv[0]) { spec in
                        guard spec.Mode?.Replicated != nil else {
                            throw EngineClientError.daemon(status: 400, message: "scale can only be used with replicated mode")
                        }
                        spec.Mode = .replicated(n)
                    }
                    print("\(kv[0]) scaled to \(n)")
                    if !detach { try await ServiceProgress(client: client, ref: kv[0], quiet: false).wait() }
                } catch let e as EngineClientError {
                    printErr("\(kv[0]): \(e.description)")
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }
}

struct ServiceUpdate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update", abstract: "Update a service.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Service image tag.") var image: String?
    @Option(help: "Number of tasks.") var replicas: UInt64?
    @Option(help: "Add or update an environment variable.") var envAdd: [String] = []
    @Option(help: "Remove an environment variable.") var envRm: [String] = []
    @Option(help: "Add or update a published port.") var publishAdd: [String] = []
    @Option(help: "Remove a published port by its target port ([PUBLISHED:]TARGET[/PROTO]).") var publishRm: [String] = []
    @Option(help: "Add a placement constraint.") var constraintAdd: [String] = []
    @Option(help: "Remove a constraint.") var constraintRm: [String] = []
    @OptionGroup var update: UpdatePolicyOptions
    @Flag(help: "Rollback to previous specification.") var rollback = false
    @Flag(help: "Force update even if no changes require it.") var force = false
    @Flag(name: .shortAndLong, help: "Exit immediately instead of waiting for the service to converge.") var detach = false
    @Flag(name: .shortAndLong, help: "Suppress progress output.") var quiet = false
    @Argument var service: String

    func run() async throws {
        try await reporting {
            let client = try global.client()
            _ = try await updateServiceSpec(client, service, rollback: rollback) { spec in
                guard !rollback else { return }
                var c = spec.TaskTemplate.ContainerSpec ?? ContainerSpec(Image: "")
                if let image { c.Image = image }
                var env = (c.Env ?? []).filter { e in !envRm.contains { e == $0 || e.hasPrefix($0 + "=") } }
                for e in envAdd {
                    let key = e.split(separator: "=", maxSplits: 1).first.map(String.init) ?? e
                    env.removeAll { $0 == key || $0.hasPrefix(key + "=") }
                    env.append(e)
                }
                c.Env = env.isEmpty ? nil : env
                spec.TaskTemplate.ContainerSpec = c
                if let replicas {
                    guard spec.Mode?.Replicated != nil else { throw ValidationError("replicas can only be used with replicated mode") }
                    spec.Mode = .replicated(replicas)
                }
                var endpoint = spec.EndpointSpec ?? EndpointSpec(Mode: "vip")
                var ports = endpoint.Ports ?? []
                for r in publishRm {
                    let gone = try parsePublish(r)
                    ports.removeAll { $0.TargetPort == gone.TargetPort && ($0.Protocol ?? "tcp") == (gone.Protocol ?? "tcp") }
                }
                for a in publishAdd {
                    let p = try parsePublish(a)
                    ports.removeAll { $0.PublishedPort != nil && $0.PublishedPort == p.PublishedPort && $0.Protocol == p.Protocol }
                    ports.append(p)
                }
                endpoint.Ports = ports.isEmpty ? nil : ports
                spec.EndpointSpec = endpoint
                var placement = spec.TaskTemplate.Placement ?? Placement()
                var constraints = (placement.Constraints ?? []).filter { !constraintRm.contains($0) } + constraintAdd
                constraints = constraints.isEmpty ? [] : constraints
                placement.Constraints = constraints.isEmpty ? nil : constraints
                spec.TaskTemplate.Placement = placement
                spec.UpdateConfig = update.apply(to: spec.UpdateConfig)
                if force { spec.TaskTemplate.ForceUpdate = (spec.TaskTemplate.ForceUpdate ?? 0) + 1 }
            }
            print(service)
            if !detach { try await ServiceProgress(client: client, ref: service, quiet: quiet).wait() }
        }
    }
}

struct ServiceRollback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rollback", abstract: "Revert changes to a service's configuration.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Exit immediately instead of waiting for the service to converge.") var detach = false
    @Flag(name: .shortAndLong, help: "Suppress progress output.") var quiet = false
    @Argument var service: String

    func run() async throws {
        try await reporting {
            let client = try global.client()
            _ = try await updateServiceSpec(client, service, rollback: true) { _ in }
            print(service)
            if !detach { try await ServiceProgress(client: client, ref: service, quiet: quiet).wait() }
        }
    }
}

struct ServiceRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more services.")
    @OptionGroup var global: GlobalOptions
    @Argument var services: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            var failed = false
            for s in services {
                do {
                    _ = try await client.call(.DELETE, apiPath("services", s))
                    print(s)
                } catch let e as EngineClientError {
                    printErr(e.description)
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }
}
