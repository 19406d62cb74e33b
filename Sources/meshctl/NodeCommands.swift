import ArgumentParser
import MeshAPI

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Manage swarm nodes.",
        subcommands: [NodeList.self, NodeInspect.self, NodeUpdate.self, NodePromote.self, NodeDemote.self, NodeRemove.self])
}

/// `key=value` filters as `--filter` takes them.
func parseFilters(_ raw: [String]) throws -> [(String, String)] {
    guard !raw.isEmpty else { return [] }
    var f: [String: [String]] = [:]
    for item in raw {
        guard let eq = item.firstIndex(of: "=") else { throw ValidationError("bad format of filter (expected name=value): \(item)") }
        f[String(item[..<eq]), default: []].append(String(item[item.index(after: eq)...]))
    }
    return [("filters", EngineClient.filters(f))]
}

/// `self` means this node, as in docker.
func resolveSelf(_ ref: String, _ client: EngineClient) async throws -> String {
    guard ref == "self" else { return ref }
    return try await client.get(SystemInfo.self, "/info").Swarm.NodeID
}

struct NodeList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List nodes in the swarm.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Only display IDs.") var quiet = false
    @Option(name: .shortAndLong, help: "Filter output based on conditions provided.") var filter: [String] = []
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table

    func run() async throws {
        try await reporting {
            let client = try global.client()
            let nodes = try await client.get([Node].self, "/nodes", query: try parseFilters(filter))
                .sorted { $0.Description.Hostname < $1.Description.Hostname }
            if quiet { return nodes.forEach { print($0.ID) } }
            if format == .json { return try nodes.forEach(printJSONLine) }
            let me = nodes.isEmpty ? "" : try await client.get(SystemInfo.self, "/info").Swarm.NodeID
            var t = Table(["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"])
            for n in nodes {
                let manager = n.ManagerStatus.map { $0.Leader == true ? "Leader" : $0.Reachability.capitalizedFirst } ?? ""
                t.add([
                    n.ID == me ? "\(n.ID) *" : n.ID, n.Description.Hostname, n.Status.State.capitalizedFirst,
                    n.Spec.Availability.capitalizedFirst, manager, n.Description.Engine.EngineVersion,
                ])
            }
            t.print()
        }
    }
}

struct NodeInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Display detailed information on one or more nodes.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Print the information in a human friendly format.") var pretty = false
    @Argument(help: "Node IDs or names (self for this node).") var nodes: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            var found: [Node] = []
            for ref in nodes { found.append(try await client.get(Node.self, apiPath("nodes", try await resolveSelf(ref, client)))) }
            guard pretty else { return try printJSON(found) }
            for n in found {
                print("ID:\t\t\t\(n.ID)")
                if let name = n.Spec.Name, !name.isEmpty { print("Name:\t\t\t\(name)") }
                if let labels = n.Spec.Labels, !labels.isEmpty {
                    print("Labels:")
                    for (k, v) in labels.sorted(by: { $0.key < $1.key }) { print(" - \(k)=\(v)") }
                }
                print("Hostname:\t\t\(n.Description.Hostname)")
                print("Joined at:\t\t\(EngineJSON.formatDate(n.CreatedAt))")
                print("Status:")
                print(" State:\t\t\t\(n.Status.State.capitalizedFirst)")
                print(" Availability:\t\t\(n.Spec.Availability.capitalizedFirst)")
                print(" Address:\t\t\(n.Status.Addr)")
                if let m = n.ManagerStatus {
                    print("Manager Status:")
                    print(" Address:\t\t\(m.Addr)")
                    print(" Raft Status:\t\t\(m.Reachability.capitalizedFirst)")
                    print(" Leader:\t\t\(m.Leader == true ? "Yes" : "No")")
                }
                print("Platform:")
                print(" Operating System:\t\(n.Description.Platform.OS)")
                print(" Architecture:\t\t\(n.Description.Platform.Architecture)")
                print("Engine Version:\t\t\(n.Description.Engine.EngineVersion)")
            }
        }
    }
}

/// GET the node, change its spec, POST it back with the version read (optimistic update).
func updateNodeSpec(_ client: EngineClient, _ ref: String, _ change: (inout NodeSpec) throws -> Void) async throws {
    let node = try await client.get(Node.self, apiPath("nodes", try await resolveSelf(ref, client)))
    var spec = node.Spec
    try change(&spec)
    try await client.post("/nodes/\(node.ID)/update", query: [("version", String(node.Version.Index))], body: spec)
}

struct NodeUpdate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "update", abstract: "Update a node.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Availability of the node (active, pause, drain).") var availability: String?
    @Option(help: "Role of the node (worker, manager).") var role: String?
    @Option(help: "Add or update a node label (key=value).") var labelAdd: [String] = []
    @Option(help: "Remove a node label if exists.") var labelRm: [String] = []
    @Argument var node: String

    func run() async throws {
        try await reporting {
            try await updateNodeSpec(try global.client(), node) { spec in
                if let availability { spec.Availability = availability }
                if let role { spec.Role = role }
                var labels = spec.Labels ?? [:]
                for l in labelAdd {
                    let kv = l.split(separator: "=", maxSplits: 1)
                    labels[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
                }
                for k in labelRm { labels[k] = nil }
                spec.Labels = labels
            }
            print(node)
        }
    }
}

struct NodePromote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "promote", abstract: "Promote one or more nodes to manager in the swarm.")
    @OptionGroup var global: GlobalOptions
    @Argument var nodes: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            for n in nodes {
                try await updateNodeSpec(client, n) { $0.Role = "manager" }
                print("Node \(n) promoted to a manager in the swarm.")
            }
        }
    }
}

struct NodeDemote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demote", abstract: "Demote one or more nodes from manager in the swarm.")
    @OptionGroup var global: GlobalOptions
    @Argument var nodes: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            for n in nodes {
                try await updateNodeSpec(client, n) { $0.Role = "worker" }
                print("Manager \(n) demoted in the swarm.")
            }
        }
    }
}

struct NodeRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more nodes from the swarm.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Force remove a node from the swarm.") var force = false
    @Argument var nodes: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            for n in nodes {
                _ = try await client.call(.DELETE, apiPath("nodes", n), query: force ? [("force", "1")] : [])
                print(n)
            }
        }
    }
}
