import ArgumentParser
import MeshAPI

struct NetworkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network", abstract: "Manage overlay networks.",
        subcommands: [NetworkCreate.self, NetworkList.self, NetworkInspect.self, NetworkRemove.self])
}

struct NetworkCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a network.")
    @OptionGroup var global: GlobalOptions
    @Option(name: .shortAndLong, help: "Driver to manage the network (overlay).") var driver = "overlay"
    @Option(help: "Subnet in CIDR format.") var subnet: [String] = []
    @Option(help: "Gateway for the master subnet.") var gateway: [String] = []
    @Flag(help: "Enable manual container attachment.") var attachable = false
    @Flag(help: "Restrict external access to the network.") var `internal` = false
    @Option(name: .shortAndLong, help: "Set driver specific options (key=value).") var opt: [String] = []
    @Option(help: "Set metadata on a network (key=value).") var label: [String] = []
    @Argument var name: String

    func run() async throws {
        try await reporting {
            let configs = subnet.enumerated().map { i, s in IPAMConfig(Subnet: s, Gateway: i < gateway.count ? gateway[i] : nil) }
            func pairs(_ items: [String]) -> [String: String] {
                Dictionary(
                    items.map { item -> (String, String) in
                        let kv = item.split(separator: "=", maxSplits: 1)
                        return (String(kv.first ?? ""), kv.count > 1 ? String(kv[1]) : "")
                    }, uniquingKeysWith: { _, b in b })
            }
            let request = NetworkCreateRequest(
                Name: name, Driver: driver, IPAM: IPAM(Driver: "default", Options: [:], Config: configs),
                Internal: `internal`, Attachable: attachable, Ingress: false, Options: pairs(opt),
                Labels: pairs(label))
            let created = try await global.client().post(NetworkCreateResponse.self, "/networks/create", body: request)
            print(created.Id)
        }
    }
}

struct NetworkList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List networks.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Only display network IDs.") var quiet = false
    @Flag(help: "Do not truncate the output.") var noTrunc = false
    @Option(name: .shortAndLong, help: "Provide filter values (e.g. driver=overlay).") var filter: [String] = []
    @Option(help: "Output format: table or json.") var format: OutputFormat = .table

    func run() async throws {
        try await reporting {
            let nets = try await global.client().get([NetworkResource].self, "/networks", query: try parseFilters(filter))
                .sorted { $0.Name < $1.Name }
            let id = { (n: NetworkResource) in noTrunc ? n.Id : n.Id.truncated(12) }
            if quiet { return nets.forEach { print(id($0)) } }
            if format == .json { return try nets.forEach(printJSONLine) }
            var t = Table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"])
            for n in nets { t.add([id(n), n.Name, n.Driver, n.Scope]) }
            t.print()
        }
    }
}

struct NetworkInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Display detailed information on one or more networks.")
    @OptionGroup var global: GlobalOptions
    @Argument var networks: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            var found: [NetworkResource] = []
            for n in networks { found.append(try await client.get(NetworkResource.self, apiPath("networks", n))) }
            try printJSON(found)
        }
    }
}

struct NetworkRemove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove one or more networks.")
    @OptionGroup var global: GlobalOptions
    @Argument var networks: [String]

    func run() async throws {
        try await reporting {
            let client = try global.client()
            for n in networks {
                _ = try await client.call(.DELETE, apiPath("networks", n))
                print(n)
            }
        }
    }
}
