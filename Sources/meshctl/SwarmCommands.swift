import ArgumentParser
import Foundation
import MeshAPI

struct SwarmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swarm", abstract: "Manage the swarm.",
        subcommands: [SwarmInit.self, SwarmJoin.self, SwarmJoinToken.self, SwarmLeave.self, SwarmUnlock.self, SwarmUnlockKey.self])
}

struct SwarmInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Initialize a swarm.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Advertised address (format: <ip|interface>[:port]).") var advertiseAddr: String?
    @Option(help: "Listen address (format: <ip|interface>[:port]).") var listenAddr = "0.0.0.0:2377"
    @Option(help: "Port number used for data path (VXLAN) traffic.") var dataPathPort: UInt32 = 0
    @Option(help: "Default address pool in CIDR format (repeatable).") var defaultAddrPool: [String] = []
    @Option(help: "Default address pool subnet mask length.") var defaultAddrPoolMaskLength: UInt32 = 24
    @Option(help: "Availability of the node (active, pause, drain).") var availability = "active"
    @Flag(help: "Enable manager autolocking (requiring an unlock key to start a stopped manager).") var autolock = false

    func run() async throws {
        try await reporting {
            let client = try global.client()
            let request = SwarmInitRequest(
                ListenAddr: listenAddr, AdvertiseAddr: advertiseAddr ?? "", DataPathPort: dataPathPort,
                ForceNewCluster: false, Spec: SwarmSpec(Name: nil), AutoLockManagers: autolock,
                Availability: availability, DefaultAddrPool: defaultAddrPool, SubnetSize: defaultAddrPoolMaskLength)
            let nodeID = try await client.post(String.self, "/swarm/init", body: request)
            print("Swarm initialized: current node (\(nodeID)) is now a manager.\n")
            let node = try await client.get(Node.self, "/nodes/\(nodeID)")
            let swarm = try await client.get(Swarm.self, "/swarm")
            print("To add a worker to this swarm, run the following command:\n")
            print("    meshctl swarm join --token \(swarm.JoinTokens.Worker) \(node.ManagerStatus?.Addr ?? node.Status.Addr)\n")
            print("To add a manager to this swarm, run 'meshctl swarm join-token manager' and follow the instructions.\n")
            if autolock {
                let key = try await client.get(UnlockKeyResponse.self, "/swarm/unlockkey").UnlockKey
                printUnlockKey(key)
            }
        }
    }
}

/// What a user must keep once autolock is on (the daemon never shows it again after a restart).
func printUnlockKey(_ key: String) {
    print("To unlock a swarm manager after it restarts, run `meshctl swarm unlock` and provide the following key:\n")
    print("    \(key)\n")
    print("Remember to store this key in a password manager: without it the manager cannot be restarted.")
}

struct SwarmJoin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "join", abstract: "Join a swarm as a node and/or manager.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Token for entry into the swarm.") var token: String
    @Option(help: "Advertised address (format: <ip|interface>[:port]).") var advertiseAddr: String?
    @Option(help: "Listen address (format: <ip|interface>[:port]).") var listenAddr = "0.0.0.0:2377"
    @Option(help: "Availability of the node (active, pause, drain).") var availability = "active"
    @Argument(help: "HOST:PORT of a manager.") var remote: String

    func run() async throws {
        try await reporting {
            let client = try global.client()
            try await client.post(
                "/swarm/join",
                body: SwarmJoinRequest(
                    ListenAddr: listenAddr, AdvertiseAddr: advertiseAddr ?? "",
                    RemoteAddrs: [remote], JoinToken: token, Availability: availability))
            let info = try await client.get(SystemInfo.self, "/info")
            print(info.Swarm.ControlAvailable ? "This node joined a swarm as a manager." : "This node joined a swarm as a worker.")
        }
    }
}

struct SwarmJoinToken: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "join-token", abstract: "Manage join tokens.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Only display token.") var quiet = false
    @Flag(help: "Rotate join token.") var rotate = false
    @Argument(help: "worker or manager.") var role: String

    func validate() throws {
        guard role == "worker" || role == "manager" else { throw ValidationError("unknown role \(role)") }
    }

    func run() async throws {
        try await reporting {
            let client = try global.client()
            var swarm = try await client.get(Swarm.self, "/swarm")
            if rotate {
                let flag = role == "worker" ? "rotateWorkerToken" : "rotateManagerToken"
                try await client.post(
                    "/swarm/update", query: [(flag, "true"), ("version", String(swarm.cluster.Version.Index))],
                    body: swarm.cluster.Spec)
                swarm = try await client.get(Swarm.self, "/swarm")
                if !quiet { print("Successfully rotated \(role) join token.\n") }
            }
            let token = role == "worker" ? swarm.JoinTokens.Worker : swarm.JoinTokens.Manager
            if quiet {
                print(token)
                return
            }
            let info = try await client.get(SystemInfo.self, "/info")
            let node = try await client.get(Node.self, "/nodes/\(info.Swarm.NodeID)")
            print("To add a \(role) to this swarm, run the following command:\n")
            print("    meshctl swarm join --token \(token) \(node.ManagerStatus?.Addr ?? node.Status.Addr)\n")
        }
    }
}

struct SwarmLeave: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "leave", abstract: "Leave the swarm.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Force this node to leave the swarm, ignoring warnings.") var force = false

    func run() async throws {
        try await reporting {
            _ = try await global.client().call(.POST, "/swarm/leave", query: force ? [("force", "1")] : [])
            print("Node left the swarm.")
        }
    }
}

struct SwarmUnlock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unlock", abstract: "Unlock a restarted manager of an autolocked swarm.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await reporting {
            let client = try global.client()
            let info = try await client.get(SystemInfo.self, "/info")
            switch info.Swarm.LocalNodeState {
            case .inactive: try fail("This node is not part of a swarm")
            case .locked: break
            default: try fail("swarm is not locked")
            }
            // From standard input: a key typed at the prompt (shown on a terminal only) or piped in.
            if isatty(0) != 0 { FileHandle.standardError.write(Data("Enter unlock key: ".utf8)) }
            guard let key = readLine(strippingNewline: true), !key.isEmpty else { try fail("no unlock key given") }
            try await client.post("/swarm/unlock", body: SwarmUnlockRequest(UnlockKey: key))
        }
    }
}

struct SwarmUnlockKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unlock-key", abstract: "Manage the unlock key.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Only display the key.") var quiet = false
    @Flag(help: "Rotate the unlock key.") var rotate = false

    func run() async throws {
        try await reporting {
            let client = try global.client()
            if rotate {
                let swarm = try await client.get(Swarm.self, "/swarm")
                guard swarm.cluster.Spec.EncryptionConfig?.AutoLockManagers == true else {
                    try fail("cannot rotate because autolock is not turned on")
                }
                try await client.post(
                    "/swarm/update", query: [("rotateManagerUnlockKey", "true"), ("version", String(swarm.cluster.Version.Index))],
                    body: swarm.cluster.Spec)
                if !quiet { print("Successfully rotated manager unlock key.\n") }
            }
            let key = try await client.get(UnlockKeyResponse.self, "/swarm/unlockkey").UnlockKey
            guard !key.isEmpty else { try fail("no unlock key is set") }
            if quiet { print(key) } else { printUnlockKey(key) }
        }
    }
}

/// A refusal meshctl makes itself, as docker prints its own: the message, exit status 1.
func fail(_ message: String) throws -> Never {
    printErr("Error: \(message)")
    throw ExitCode(1)
}
