import MeshKernel

/// The name tables, as one value. Each update removes exactly what the old version of a service
/// or task contributed and adds what the new one does, so its cost follows the size of that
/// record (and, for `tasks.<service>`, nothing else: entries are keyed by owner).
public struct DNSRecordIndex: Sendable {
    struct Key: Hashable, Sendable {
        var network: String
        var name: DNSName  // compares case-insensitively
    }
    struct ReverseKey: Hashable, Sendable {
        var network: String
        var address: IPAddress
    }

    private(set) var networks: [String: DNSNetwork] = [:]
    private(set) var services: [String: DNSService] = [:]
    private(set) var tasks: [String: DNSTask] = [:]
    /// Name → owner ID → addresses. Owners are task IDs, or service IDs for their VIPs.
    private var hosts: [Key: DNSOwners<[IPAddress]>] = [:]
    /// Service names and aliases → service ID.
    private var serviceNames: [Key: String] = [:]
    private var reverse: [ReverseKey: DNSOwners<DNSName>] = [:]
    /// Network ID → IDs of services and tasks on it, to re-index them when the network is renamed.
    private var members: [String: Set<String>] = [:]

    public init() {}

    public var nameCount: Int { hosts.count + serviceNames.count }

    // MARK: updates

    public mutating func upsert(_ n: DNSNetwork) {
        guard networks[n.id]?.name != n.name else {
            networks[n.id] = n
            return
        }
        // The `<name>.<network>` forms change: re-index only what is on this network, removing
        // under the old name and adding under the new one.
        let ids = members[n.id] ?? []
        let ss = ids.compactMap { services[$0] }, ts = ids.compactMap { tasks[$0] }
        for s in ss { removeService(s.id) }
        for t in ts { removeTask(t.id) }
        networks[n.id] = n
        for s in ss { upsert(s) }
        for t in ts { upsert(t) }
    }

    public mutating func removeNetwork(_ id: String) {
        for member in members[id] ?? [] {
            if var s = services[member] {
                s.vips[id] = nil
                s.networks.remove(id)
                upsert(s)
            }
            if var t = tasks[member] {
                t.addresses[id] = nil
                upsert(t)
            }
        }
        networks[id] = nil
        members[id] = nil
    }

    public mutating func upsert(_ s: DNSService) {
        removeService(s.id)
        services[s.id] = s
        for net in s.networkIDs { members[net, default: []].insert(s.id) }
        for net in s.networkIDs {
            for name in names(s.name, s.aliases, on: net) { serviceNames[Key(network: net, name: name)] = s.id }
            guard s.mode == .vip, let vips = s.vips[net] else { continue }
            for name in names(s.name, s.aliases, on: net) { addHost(Key(network: net, name: name), s.id, vips) }
            if let ptr = ptrName(s.name, on: net) {
                for ip in vips { addReverse(ReverseKey(network: net, address: ip), s.id, ptr) }
            }
        }
    }

    public mutating func removeService(_ id: String) {
        guard let s = services.removeValue(forKey: id) else { return }
        for net in s.networkIDs {
            for name in names(s.name, s.aliases, on: net) {
                let k = Key(network: net, name: name)
                if serviceNames[k] == id { serviceNames[k] = nil }
                removeOwner(id, from: k)
            }
            for ip in s.vips[net] ?? [] { removeReverse(id, ReverseKey(network: net, address: ip)) }
            members[net]?.remove(id)
        }
    }

    public mutating func upsert(_ t: DNSTask) {
        removeTask(t.id)
        tasks[t.id] = t
        for (net, addrs) in t.addresses {
            members[net, default: []].insert(t.id)
            for name in taskNames(t, on: net) { addHost(Key(network: net, name: name), t.id, addrs) }
            if let ptr = ptrName(t.name, on: net) {
                for ip in addrs { addReverse(ReverseKey(network: net, address: ip), t.id, ptr) }
            }
        }
    }

    public mutating func removeTask(_ id: String) {
        guard let t = tasks.removeValue(forKey: id) else { return }
        for (net, addrs) in t.addresses {
            for name in taskNames(t, on: net) { removeOwner(id, from: Key(network: net, name: name)) }
            for ip in addrs { removeReverse(id, ReverseKey(network: net, address: ip)) }
            members[net]?.remove(id)
        }
    }

    private mutating func addHost(_ k: Key, _ owner: String, _ addrs: [IPAddress]) {
        if hosts[k] != nil { hosts[k]!.set(owner, addrs) } else { hosts[k] = DNSOwners(owner, addrs) }
    }

    private mutating func addReverse(_ k: ReverseKey, _ owner: String, _ name: DNSName) {
        if reverse[k] != nil { reverse[k]!.set(owner, name) } else { reverse[k] = DNSOwners(owner, name) }
    }

    private mutating func removeOwner(_ owner: String, from k: Key) {
        if hosts[k]?.remove(owner) == true { hosts[k] = nil }
    }

    private mutating func removeReverse(_ owner: String, _ k: ReverseKey) {
        if reverse[k]?.remove(owner) == true { reverse[k] = nil }
    }

    /// `name` and each alias. `<name>.<network>` is not stored: lookups strip the network's name
    /// (see `key`), which halves the table and makes a network rename free for host names.
    private func names(_ name: String, _ aliases: [String], on net: String) -> [DNSName] {
        ([name] + aliases).compactMap { DNSName($0) }
    }

    /// The key `name` is stored under on `net`: the name itself, or, for `<name>.<network>`,
    /// the name without the network's label.
    private func key(_ name: DNSName, on net: String, exists: (Key) -> Bool) -> Key? {
        let k = Key(network: net, name: name)
        if exists(k) { return k }
        guard let n = networks[net], name.lastLabelIs(n.name) else { return nil }
        let bare = Key(network: net, name: name.droppingLastLabel)
        return exists(bare) ? bare : nil
    }

    private func taskNames(_ t: DNSTask, on net: String) -> [DNSName] {
        var out = names(t.name, t.aliases, on: net)
        if let svc = t.service { out += names("tasks." + svc, [], on: net) }
        out += t.serviceAliases.flatMap { names("tasks." + $0, [], on: net) }
        return out
    }

    private func ptrName(_ name: String, on net: String) -> DNSName? {
        networks[net].flatMap { DNSName(name + "." + $0.name) } ?? DNSName(name)
    }

    // MARK: lookups (for the networks the asker is on)

    /// Addresses for `name`, or nil when no record of any type has that name.
    public func addresses(for name: DNSName, networks nets: [String]) -> [IPAddress]? {
        var found = false
        var out: [IPAddress] = []
        for net in nets {
            guard let k = key(name, on: net, exists: { serviceNames[$0] != nil || hosts[$0] != nil }) else { continue }
            if let sid = serviceNames[k], let s = services[sid], s.mode == .dnsrr {
                found = true
                if let tasksName = DNSName("tasks." + s.name) {
                    hosts[Key(network: net, name: tasksName)]?.forEach { _, a in out.append(contentsOf: a) }
                }
                continue
            }
            if let owners = hosts[k] {
                found = true
                owners.forEach { _, a in out.append(contentsOf: a) }
            }
        }
        guard found else { return nil }
        guard nets.count > 1 else { return out }
        // One address may be reachable on two shared networks; answer it once.
        var seen = Set<IPAddress>()
        return out.filter { seen.insert($0).inserted }
    }

    /// PTR targets for an address, or nil when none of the asker's networks has it.
    public func names(for address: IPAddress, networks nets: [String]) -> [DNSName]? {
        var out: [DNSName] = []
        for net in nets { reverse[ReverseKey(network: net, address: address)]?.forEach { _, n in out.append(n) } }
        return out.isEmpty ? nil : Array(Set(out))
    }

    public struct SRVTarget: Sendable, Hashable {
        public var port: UInt16
        public var target: DNSName
        public var addresses: [IPAddress]
    }

    /// `_<port name>._<proto>.<service>`: nil when the service is unknown to the asker.
    /// VIP services answer with the service name as target; dnsrr services with each task.
    public func srv(service: DNSName, portLabel: String, proto: String, networks nets: [String]) -> [SRVTarget]? {
        var sid: String?
        for net in nets {
            if let k = key(service, on: net, exists: { serviceNames[$0] != nil }) {
                sid = serviceNames[k]
                break
            }
        }
        guard let sid, let s = services[sid] else { return nil }
        let ports = s.ports.filter { $0.label.lowercased() == portLabel.lowercased() && $0.proto.lowercased() == proto.lowercased() }
        var out: [SRVTarget] = []
        for p in ports {
            switch s.mode {
            case .vip:
                out.append(SRVTarget(port: p.target, target: service, addresses: addresses(for: service, networks: nets) ?? []))
            case .dnsrr:
                // The tasks.<service> entry is keyed by task ID: walk it, not every task.
                var ids = Set<String>()
                if let tasksName = DNSName("tasks." + s.name) {
                    for net in nets { hosts[Key(network: net, name: tasksName)]?.forEach { id, _ in ids.insert(id) } }
                }
                for id in ids {
                    guard let t = tasks[id] else { continue }
                    let addrs = nets.flatMap { t.addresses[$0] ?? [] }
                    guard !addrs.isEmpty, let n = DNSName(t.name) else { continue }
                    out.append(SRVTarget(port: p.target, target: n, addresses: addrs))
                }
            }
        }
        return out
    }
}
