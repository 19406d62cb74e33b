import MeshKernel

extension StateIndex {
    /// The single-object changes that turn the applied state into `state`, or nil when the node's
    /// identity or its networks differ (a sandbox appears, goes or changes: a full apply's job).
    /// Comparing values costs the state in memory; what reaches the kernel costs only the changes.
    ///
    /// Order matters to the index's checks: removals first (a port or address a removed object
    /// held is free again), then remote and local endpoints, then services, those that give up
    /// published ports before those that take them.
    func changes(to state: DataplaneState) -> [DataplaneChange]? {
        guard state.node == self.state.node, state.networks == self.state.networks else { return nil }
        var removals: [DataplaneChange] = []
        var endpoints: [DataplaneChange] = []
        var shrinking: [DataplaneChange] = []
        var growing: [DataplaneChange] = []

        var wantedServices: Set<String> = []
        for s in state.services {
            wantedServices.insert(s.id)
            guard let old = services[s.id] else {
                growing.append(.service(s))
                continue
            }
            guard old != s else { continue }
            let gives = Set(old.allPorts.map(\.published)).subtracting(s.allPorts.map(\.published))
            if gives.isEmpty { growing.append(.service(s)) } else { shrinking.append(.service(s)) }
        }
        for id in services.keys.sorted() where !wantedServices.contains(id) { removals.append(.removeService(id: id)) }

        var wantedLocals: Set<String> = []
        for e in state.localEndpoints {
            let k = Self.key(e.id, e.network)
            wantedLocals.insert(k)
            if locals[k] != e { endpoints.append(.localEndpoint(e)) }
        }
        for (k, e) in locals.sorted(by: { $0.key < $1.key }) where !wantedLocals.contains(k) {
            removals.append(.removeLocalEndpoint(task: e.id, network: e.network))
        }

        var wantedRemotes: Set<String> = []
        for r in state.remoteEndpoints {
            let k = Self.key(r.network, r.address)
            wantedRemotes.insert(k)
            if remotes[k] != r { endpoints.append(.remoteEndpoint(r)) }
        }
        for (k, r) in remotes.sorted(by: { $0.key < $1.key }) where !wantedRemotes.contains(k) {
            removals.append(.removeRemoteEndpoint(network: r.network, address: r.address))
        }
        // Keys before endpoints: a pair's first encrypted endpoint finds its keys in place.
        var keys: [DataplaneChange] = []
        var wantedKeys: Set<String> = []
        for k in state.peerKeys {
            wantedKeys.insert(k.nodeID)
            if peerKeys[k.nodeID] != k { keys.append(.peerKeys(k)) }
        }
        for id in peerKeys.keys.sorted() where !wantedKeys.contains(id) { removals.append(.removePeerKeys(node: id)) }
        return keys + removals + endpoints + shrinking + growing
    }
}
