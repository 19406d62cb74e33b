import Foundation
import MeshDataplane
import MeshKernel
import Synchronization

/// Three (or more) "nodes" on a test underlay, for driving `meshd dataplane apply` end to end:
///
///     underlay ns:  br0 ── uN ══ eth0 (node N, 198.18.0.N/24)      uc ══ eth0 (client, 198.18.0.100/24)
///     node N:       what meshd makes for it (sandboxes `meshd-<node id>-<net>`, `table inet meshd`, meshd-ingress)
///     task ns:      made empty (lo up) by `createTask`; meshd adds eth0
///
/// Node ids are `mkt<6 random>nN`, unique per lab, so parallel labs never share a sandbox name and
/// scripts/test's leftover check sees every sandbox (`meshd-mkt…`). `destroy()` removes the lab's
/// namespaces, every sandbox of its nodes, the state files and every process it started.
public final class DataplaneLab: Sendable {
    public let group: NamespaceGroup
    public let nodeIDs: [String]
    /// The `meshd` binary that `apply` and `startWhoami` run.
    public let meshd: String
    public let stateDirectory: String
    /// curl's --max-time: 2 s on the host; the VM lane's emulated CPU needs more.
    public let requestSeconds: Int
    private let processes = Mutex<[Process]>([])

    public static let clientAddress = IPAddress("198.18.0.100")!
    public static let ingressNetwork = OverlayNetwork(
        id: "ingress", name: "ingress", vni: 4096, subnet: IPPrefix("10.255.0.0/24")!,
        gateway: IPAddress("10.255.0.1")!, ingress: true)

    public var nodeCount: Int { nodeIDs.count }
    /// 1-based, like the node names.
    public func nodeNamespace(_ n: Int) -> String { group.name("node\(n)") }
    public func underlayAddress(_ n: Int) -> IPAddress { IPAddress("198.18.0.\(n)")! }
    public func ingressAddress(_ n: Int) -> IPAddress { IPAddress("10.255.0.\(200 + n)")! }
    /// After `addUnderlay6`: the underlay's IPv6 addresses (fd00:198:18::/64).
    public func underlayAddress6(_ n: Int) -> IPAddress { IPAddress("fd00:198:18::\(n)")! }
    public static let clientAddress6 = IPAddress("fd00:198:18::100")!
    public func nodeID(_ n: Int) -> String { nodeIDs[n - 1] }
    public var clientNamespace: String { group.name("client") }
    public var underlayNamespace: String { group.name("underlay") }
    public func taskNamespace(_ task: String) -> String { group.name("t-\(task)") }
    /// Sandboxes of node `n` that exist now (what meshd made for it).
    public func sandboxes(_ n: Int) -> [String] {
        let prefix = Naming(nodeID: nodeID(n)).sandboxPrefix
        return NetworkNamespace.list().filter { $0.hasPrefix(prefix) }.sorted()
    }

    private init(group: NamespaceGroup, nodeIDs: [String], meshd: String, stateDirectory: String, requestSeconds: Int) {
        self.group = group
        self.nodeIDs = nodeIDs
        self.meshd = meshd
        self.stateDirectory = stateDirectory
        self.requestSeconds = requestSeconds
    }

    /// Builds the underlay, `nodes` node namespaces and the client; removes what it made on failure.
    public static func build(tag: String = "mkt", nodes: Int = 3, meshd: String? = nil, requestSeconds: Int = 2) async throws
        -> DataplaneLab
    {
        let group = NamespaceGroup(tag: tag)
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let random = String((0..<6).map { _ in letters.randomElement()! })
        let ids = (1...nodes).map { "mkt\(random)n\($0)" }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(group.prefix)-states").path
        let lab = DataplaneLab(
            group: group, nodeIDs: ids, meshd: meshd ?? locateMeshd(), stateDirectory: dir,
            requestSeconds: requestSeconds)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let underlay = try group.create("underlay")
            let u = try NetlinkHandle(namespace: underlay)
            try await u.apply([.linkSet("lo", LinkChange(up: true))])
            try await u.linkAdd(LinkSpec(name: "br0", kind: .bridge, up: true))
            var hosts: [(String, IPAddress, String)] = (1...nodes).map { ("node\($0)", lab.underlayAddress($0), "u\($0)") }
            hosts.append(("client", clientAddress, "uc"))
            for (role, address, port) in hosts {
                let ns = try group.create(role)
                let h = try NetlinkHandle(namespace: ns)
                try await u.linkAdd(
                    LinkSpec(
                        name: port, kind: .veth(peerName: "eth0", peerNamespace: ns), mtu: 1500,
                        master: "br0", up: true))
                try await h.apply([
                    .linkSet("lo", LinkChange(up: true)),
                    .addrAdd(InterfaceAddress(device: "eth0", prefix: IPPrefix(address: address, length: 24)!)),
                    .linkSet("eth0", LinkChange(up: true)),
                ])
            }
            return lab
        } catch {
            lab.destroy()
            throw error
        }
    }

    /// Gives every node and the client an IPv6 address on the underlay too (no DAD: the lab's
    /// bridge is its own), for published ports reached over IPv6.
    public func addUnderlay6() async throws {
        var hosts = (1...nodeCount).map { (nodeNamespace($0), underlayAddress6($0)) }
        hosts.append((clientNamespace, Self.clientAddress6))
        for (name, address) in hosts {
            let h = try NetlinkHandle(namespace: try NetworkNamespace.open(named: name))
            try await h.apply([.addrAdd(InterfaceAddress(device: "eth0", prefix: IPPrefix(address: address, length: 64)!, noDAD: true))])
        }
    }

    /// `MESHD_BIN`, else `meshd` next to the running binary or up to four directories above it
    /// (a test bundle sits in .build/debug/…xctest/…).
    public static func locateMeshd() -> String {
        if let bin = ProcessInfo.processInfo.environment["MESHD_BIN"] { return bin }
        let start = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        var d = start
        for _ in 0..<5 {
            let candidate = d.appendingPathComponent("meshd").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            d = d.deletingLastPathComponent()
        }
        return start.appendingPathComponent("meshd").path
    }

    /// An empty task namespace (lo up): meshd gives it its interfaces.
    @discardableResult
    public func createTask(_ id: String) async throws -> NetworkNamespace {
        let ns = try group.create("t-\(id)")
        try await NetlinkHandle(namespace: ns).apply([.linkSet("lo", LinkChange(up: true))])
        return ns
    }

    // MARK: state

    /// A task: which node runs it (1-based) and its address on each network, the first carrying
    /// the default route (eth0, eth1, … in this order).
    public struct TaskSpec: Sendable {
        public var id: String
        public var service: String?
        public var node: Int
        public var addresses: [(network: String, address: IPAddress)]
        public var weight: UInt32?
        public init(id: String, service: String?, node: Int, addresses: [(network: String, address: IPAddress)], weight: UInt32? = nil) {
            self.id = id
            self.service = service
            self.node = node
            self.addresses = addresses
            self.weight = weight
        }
    }
    public struct ServiceDef: Sendable {
        public var id: String
        public var name: String
        public var vips: [BalancedService.VIP]
        public var ports: [BalancedService.Port]
        public init(id: String, name: String, vips: [BalancedService.VIP], ports: [BalancedService.Port] = []) {
            self.id = id
            self.name = name
            self.vips = vips
            self.ports = ports
        }
    }

    /// Every node's state (index 0 = node 1): its own tasks as local endpoints; other nodes'
    /// tasks, and other nodes' ingress addresses, as remote endpoints; every service with all its
    /// backends. The ingress network is added when a service publishes a port.
    public func states(networks: [OverlayNetwork], tasks: [TaskSpec], services: [ServiceDef]) -> [DataplaneState] {
        let withIngress = services.contains { !$0.ports.isEmpty }
        let nets = networks + (withIngress && !networks.contains(where: \.isIngress) ? [Self.ingressNetwork] : [])
        let known = Set(nets.map(\.id))
        let ingressID = nets.first(where: \.isIngress)?.id
        var specs: [BalancedService] = []
        for s in services {
            let backends = tasks.filter { $0.service == s.id }.flatMap { t in
                t.addresses.filter { known.contains($0.network) && $0.address.isIPv4 }.map {
                    BalancedService.Backend(network: $0.network, address: $0.address, weight: t.weight)
                }
            }
            specs.append(BalancedService(id: s.id, name: s.name, vips: s.vips, backends: backends, ports: s.ports))
        }
        return (1...nodeCount).map { n in
            var local: [LocalEndpoint] = []
            var remote: [RemoteEndpoint] = []
            for t in tasks {
                // A task's IPv4 addresses are its attachments (eth0, eth1, … in order); an IPv6
                // address joins its network's attachment (dual stack).
                let v4 = t.addresses.filter(\.address.isIPv4)
                for (i, a) in t.addresses.enumerated() where known.contains(a.network) {
                    if t.node == n {
                        guard a.address.isIPv4, let slot = v4.firstIndex(where: { $0.network == a.network && $0.address == a.address })
                        else { continue }
                        let a6 = t.addresses.first { $0.network == a.network && !$0.address.isIPv4 }?.address
                        local.append(
                            LocalEndpoint(
                                id: t.id, network: a.network, namespace: taskNamespace(t.id), address: a.address,
                                interface: "eth\(slot)", defaultRoute: i == 0, address6: a6))
                    } else {
                        remote.append(
                            RemoteEndpoint(
                                network: a.network, address: a.address, nodeID: nodeID(t.node),
                                nodeAddress: underlayAddress(t.node)))
                    }
                }
            }
            if let ingressID {
                for m in 1...nodeCount where m != n {
                    remote.append(
                        RemoteEndpoint(
                            network: ingressID, address: ingressAddress(m), nodeID: nodeID(m),
                            nodeAddress: underlayAddress(m), isNodeIngress: true))
                    if let a6 = nets.first(where: \.isIngress)?.address6(for: ingressAddress(m)) {
                        remote.append(RemoteEndpoint(network: ingressID, address: a6, nodeID: nodeID(m), nodeAddress: underlayAddress(m)))
                    }
                }
            }
            let node = NodeIdentity(
                id: nodeID(n), advertiseAddress: underlayAddress(n),
                ingressAddress: ingressID == nil ? nil : ingressAddress(n), namespace: nodeNamespace(n))
            return DataplaneState(node: node, networks: nets, localEndpoints: local, remoteEndpoints: remote, services: specs)
        }
    }

    /// Writes `state` for node `n` (JSON, as `meshd dataplane apply --state` reads it); returns the path.
    @discardableResult
    public func write(_ state: DataplaneState, node n: Int, suffix: String = "") throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let path = "\(stateDirectory)/node\(n)\(suffix).json"
        try encoder.encode(state).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The state with nothing in it: applying it removes everything meshd made for node `n`.
    public func emptyState(_ n: Int) -> DataplaneState {
        DataplaneState(node: NodeIdentity(id: nodeID(n), advertiseAddress: underlayAddress(n), namespace: nodeNamespace(n)))
    }

    // MARK: driving meshd

    /// `meshd dataplane apply --state FILE --lb LB` for node `n` with `state`.
    public func apply(_ state: DataplaneState, node n: Int, lb: String = "nftables") throws -> Exec.Output {
        let path = try write(state, node: n)
        return try Exec.run([meshd, "dataplane", "apply", "--state", path, "--lb", lb])
    }

    /// Applies every node's state; throws with meshd's stderr on the first failure. Returns the
    /// changes each node printed.
    @discardableResult
    public func applyAll(_ states: [DataplaneState], lb: String = "nftables") throws -> [[String]] {
        var out: [[String]] = []
        for (i, s) in states.enumerated() {
            let o = try apply(s, node: i + 1, lb: lb)
            guard o.succeeded else { throw Exec.Failure(command: ["meshd", "dataplane", "apply", "node\(i + 1)"], output: o) }
            out.append(o.stdout.split(separator: "\n").map(String.init))
        }
        return out
    }

    /// Starts `meshd whoami --name NAME` listening on every address of task `task` at `port`, and
    /// waits until it accepts. Ended by `stop(_:)` or `destroy()`.
    @discardableResult
    public func startWhoami(task: String, name: String, port: UInt16 = 8000, address: String = "0.0.0.0") throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        // `ip netns exec` execs meshd, so this pid is the server's own.
        p.arguments = ["netns", "exec", taskNamespace(task), meshd, "whoami", "--name", name, "--port", "\(port)", "--address", address]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        processes.withLock { $0.append(p) }
        let ready = DispatchSemaphore(value: 0)
        let handle = out.fileHandleForReading
        Thread {
            // The first line announces the listener; then keep draining so the pipe never fills.
            var signalled = false
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                if !signalled {
                    signalled = true
                    ready.signal()
                }
            }
            if !signalled { ready.signal() }
        }.start()
        // Generous: the VM lane runs a debug meshd under an emulated CPU.
        let announced = ready.wait(timeout: .now() + 60) == .success
        guard announced, p.isRunning else {
            let why = !announced ? "no listening line within 60 s" : "exited with status \(p.terminationStatus)"
            stop(p)
            throw Exec.Failure(
                command: p.arguments ?? [], output: Exec.Output(status: 1, stdout: "", stderr: "whoami did not start: \(why)"))
        }
        return p
    }

    /// Starts a process the lab keeps track of (ended by pid in `stop`/`destroy`).
    public func track(_ p: Process) { processes.withLock { $0.append(p) } }

    public func stop(_ p: Process) {
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        processes.withLock { $0.removeAll { $0 === p } }
    }

    /// `curl` from namespace `ns`: `count` requests to `url`, each on a new connection; the name
    /// of the backend (whoami's "I'm NAME" line) that answered each, "failed" for no answer.
    public func spread(from ns: String, url: String, count: Int) throws -> [String: Int] {
        let out = try Exec.run(
            ["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "\(requestSeconds)", "-H", "Connection: close"]
                + Array(repeating: url, count: count))
        var counts: [String: Int] = [:]
        var answered = 0
        for line in out.stdout.split(separator: "\n") where line.hasPrefix("I'm ") {
            counts[String(line.dropFirst(4)), default: 0] += 1
            answered += 1
        }
        if answered < count { counts["failed", default: 0] += count - answered }
        return counts
    }

    /// One request from `ns`; the whoami text (empty on failure).
    public func get(from ns: String, url: String) throws -> String {
        try Exec.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "\(requestSeconds)", url]).stdout
    }

    // MARK: teardown

    public func destroy() {
        let running = processes.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for p in running where p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        for id in nodeIDs {
            let prefix = Naming(nodeID: id).sandboxPrefix
            for name in NetworkNamespace.list() where name.hasPrefix(prefix) { try? NetworkNamespace.delete(named: name) }
        }
        group.destroy()
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }
}
