import ArgumentParser
import Foundation
import MeshAPI

/// `*:8000->80/tcp` for each ingress port, as `service ls` prints them.
func portsColumn(_ ports: [PortConfig]?, mode: String) -> String {
    (ports ?? []).filter { ($0.PublishMode ?? "ingress") == mode }
        .map { "*:\($0.PublishedPort ?? 0)->\($0.TargetPort)/\($0.Protocol ?? "tcp")" }.joined(separator: ", ")
}

/// The image without its `@sha256:` digest.
func imageColumn(_ image: String?) -> String {
    guard let image else { return "" }
    return image.split(separator: "@").first.map(String.init) ?? image
}

struct ServiceList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List services.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Only display IDs.") var quiet = false
    @Option(name: .shortAndLong, help: "Filter output based on conditions provided.") var filter: [String] = []
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table

    func run() async throws {
        try await reporting {
            let services = try await global.client().get(
                [Service].self, "/services", query: try parseFilters(filter) + [("status", "true")]
            )
            .sorted { ($0.Spec.Name ?? "") < ($1.Spec.Name ?? "") }
            if quiet { return services.forEach { print($0.ID.truncated(12)) } }
            if format == .json { return try services.forEach(printJSONLine) }
            var t = Table(["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"])
            for s in services {
                var replicas = s.ServiceStatus.map { "\($0.RunningTasks)/\($0.DesiredTasks)" } ?? ""
                if let max = s.Spec.TaskTemplate.Placement?.MaxReplicas, max > 0 { replicas += " (max \(max) per node)" }
                t.add([
                    s.ID.truncated(12), s.Spec.Name ?? "", (s.Spec.Mode ?? .replicated(1)).name, replicas,
                    imageColumn(s.Spec.TaskTemplate.ContainerSpec?.Image), portsColumn(s.Endpoint?.Ports, mode: "ingress"),
                ])
            }
            t.print()
        }
    }
}

struct ServicePS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ps", abstract: "List the tasks of one or more services.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Only display task IDs.") var quiet = false
    @Flag(help: "Do not truncate output.") var noTrunc = false
    @Option(name: .shortAndLong, help: "Filter output based on conditions provided.") var filter: [String] = []
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table
    @Argument var services: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            var tasks: [(Service, SwarmTask)] = []
            for ref in services {
                let svc = try await client.get(Service.self, apiPath("services", ref), query: [("insertDefaults", "false")])
                var f: [String: [String]] = ["service": [svc.ID]]
                for item in filter {
                    let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
                    guard kv.count == 2 else { throw ValidationError("bad format of filter (expected name=value): \(item)") }
                    f[kv[0], default: []].append(kv[1])
                }
                let found = try await client.get([SwarmTask].self, "/tasks", query: [("filters", EngineClient.filters(f))])
                tasks += found.map { (svc, $0) }
            }
            // Per slot (or node for global services), newest first; older tasks of a slot are its history.
            tasks.sort { a, b in
                let ka = (a.0.Spec.Name ?? "", a.1.Slot, a.1.Slot == 0 ? a.1.NodeID : "")
                let kb = (b.0.Spec.Name ?? "", b.1.Slot, b.1.Slot == 0 ? b.1.NodeID : "")
                return ka != kb ? ka < kb : a.1.CreatedAt > b.1.CreatedAt
            }
            if quiet { return tasks.forEach { print(noTrunc ? $0.1.ID : $0.1.ID.truncated(12)) } }
            if format == .json { return try tasks.forEach { try printJSONLine($0.1) } }
            var names: [String: String] = [:]
            var t = Table(["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"])
            var previousKey = ""
            for (svc, task) in tasks {
                let base = "\(svc.Spec.Name ?? svc.ID).\(task.Slot == 0 ? task.NodeID : String(task.Slot))"
                let name = base == previousKey ? " \\_ \(base)" : base
                previousKey = base
                if names[task.NodeID] == nil, !task.NodeID.isEmpty {
                    let node = try? await client.get(Node.self, apiPath("nodes", task.NodeID))
                    names[task.NodeID] = node.map { ($0.Spec.Name ?? "").isEmpty ? $0.Description.Hostname : $0.Spec.Name! } ?? task.NodeID
                }
                let err = task.Status.Err.map { $0.isEmpty ? "" : "\"\($0.truncated(noTrunc ? 10_000 : 60))\"" } ?? ""
                t.add([
                    noTrunc ? task.ID : task.ID.truncated(12), name, imageColumn(task.Spec.ContainerSpec?.Image), names[task.NodeID] ?? "",
                    task.DesiredState.capitalizedFirst,
                    "\(task.Status.State.capitalizedFirst) \(humanAgo(task.Status.Timestamp).lowercasedAgo)",
                    err, portsColumn(task.Status.PortStatus?.Ports, mode: "host"),
                ])
            }
            t.print()
        }
    }
}

extension String {
    /// `Running 19 seconds ago`, `Running less than a second ago`.
    var lowercasedAgo: String { hasPrefix("Less") || hasPrefix("About") ? prefix(1).lowercased() + dropFirst() : self }
}

struct ServiceInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Display detailed information on one or more services.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print the information in a human friendly format.") var pretty = false
    @Argument var services: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            var found: [Service] = []
            for s in services {
                do {
                    found.append(try await client.get(Service.self, apiPath("services", s), query: [("insertDefaults", "true")]))
                } catch let e as EngineClientError where e.status == 404 {
                    printErr("no such service: \(s)")
                    throw ExitCode(1)
                }
            }
            guard pretty else { return try printJSON(found) }
            for s in found { try await printPretty(s, client) }
        }
    }

    func printPretty(_ s: Service, _ client: EngineClient) async throws {
        let spec = s.Spec
        print("\nID:\t\t\(s.ID)")
        print("Name:\t\t\(spec.Name ?? "")")
        if let labels = spec.Labels, !labels.isEmpty {
            print("Labels:")
            for (k, v) in labels.sorted(by: { $0.key < $1.key }) { print(" \(k)=\(v)") }
        }
        if let r = spec.Mode?.Replicated {
            print("Service Mode:\tReplicated\n Replicas:\t\(r.Replicas ?? 1)")
        } else {
            print("Service Mode:\tGlobal")
        }
        if let u = s.UpdateStatus {
            print("UpdateStatus:\n State:\t\t\(u.State ?? "")")
            if let m = u.Message { print(" Message:\t\(m)") }
        }
        if let c = spec.TaskTemplate.Placement?.Constraints, !c.isEmpty { print("Placement:\n Constraints:\t\(c)") }
        for (title, c) in [("UpdateConfig", spec.UpdateConfig), ("RollbackConfig", spec.RollbackConfig)] {
            guard let c else { continue }
            print("\(title):\n Parallelism:\t\(c.Parallelism ?? 1)")
            if let d = c.Delay, d > 0 { print(" Delay:\t\t\(GoDuration.format(d))") }
            print(" On failure:\t\(c.FailureAction ?? "pause")")
            print(" Monitoring Period: \(GoDuration.format(c.Monitor ?? 0))")
            print(" Max failure ratio: \(c.MaxFailureRatio ?? 0)")
            print(" Update order:      \(c.Order ?? "stop-first")")
        }
        print("ContainerSpec:\n Image:\t\t\(spec.TaskTemplate.ContainerSpec?.Image ?? "")")
        if let args = spec.TaskTemplate.ContainerSpec?.Args, !args.isEmpty { print(" Args:\t\t\(args.joined(separator: " "))") }
        if let env = spec.TaskTemplate.ContainerSpec?.Env, !env.isEmpty { print(" Env:\t\t\(env.joined(separator: " "))") }
        if let nets = spec.TaskTemplate.Networks, !nets.isEmpty {
            var names: [String] = []
            for n in nets {
                names.append(
                    (try? await client.get(NetworkResource.self, apiPath("networks", n.Target), query: [("scope", "swarm")]))?.Name
                        ?? n.Target)
            }
            print("Networks:\t\(names.joined(separator: " "))")
        }
        print("Endpoint Mode:\t\(spec.EndpointSpec?.Mode ?? "vip")")
        if let ports = s.Endpoint?.Ports, !ports.isEmpty {
            print("Ports:")
            for p in ports {
                print(
                    " PublishedPort = \(p.PublishedPort ?? 0)\n  Protocol = \(p.Protocol ?? "tcp")\n  TargetPort = \(p.TargetPort)\n  PublishMode = \(p.PublishMode ?? "ingress")"
                )
            }
        }
        print("")
    }
}
