import MeshKernel

extension DataplaneState {
    /// Every contradiction in the state, or an empty list. Checked before any kernel write.
    public func problems() -> [String] {
        var out: [String] = []
        var networksByID: [String: OverlayNetwork] = [:]
        var vnis: [UInt32: String] = [:]
        if !node.advertiseAddress.isIPv4 { out.append("node \(node.id): advertise address \(node.advertiseAddress) must be IPv4") }
        if node.id.isEmpty { out.append("node id is empty") }
        for n in networks {
            if networksByID[n.id] != nil { out.append("network \(n.id) is listed twice") }
            networksByID[n.id] = n
            if let other = vnis[n.vni] { out.append("network \(n.name): VNI \(n.vni) is also used by \(other)") }
            vnis[n.vni] = n.name
            if n.vni == 0 || n.vni >= 1 << 24 { out.append("network \(n.name): VNI \(n.vni) is outside 1…16777215") }
            if !n.subnet.address.isIPv4 { out.append("network \(n.name): only IPv4 subnets are supported") }
            if !n.subnet.contains(n.gateway) { out.append("network \(n.name): gateway \(n.gateway) is outside \(n.subnet)") }
            if let s6 = n.subnet6 {
                if s6.address.isIPv4 { out.append("network \(n.name): subnet6 \(s6) is not an IPv6 subnet") }
                if s6.length > 120 || s6.length < 48 { out.append("network \(n.name): subnet6 \(s6) must be a /48 to a /120") }
            }
            if let m = n.mtu, m < 576 || m > 9000 { out.append("network \(n.name): MTU \(m) is outside 576…9000") }
            if n.isIngress && node.ingressAddress == nil {
                out.append("network \(n.name) is the ingress network but node \(node.id) has no ingressAddress")
            }
            if n.isIngress, let a = node.ingressAddress, !n.subnet.contains(a) {
                out.append("node \(node.id): ingress address \(a) is outside the ingress subnet \(n.subnet)")
            }
        }
        if networks.filter(\.isIngress).count > 1 { out.append("more than one ingress network") }
        for n in networks where n.isIngress && n.isEncrypted { out.append("network \(n.name): the ingress network cannot be encrypted") }
        out += keyProblems()

        var taken: [String: String] = [:]  // "network/address" → who holds it
        func claim(_ network: String, _ a: IPAddress, _ who: String) {
            let k = "\(network)/\(a)"
            if let prev = taken[k] { out.append("\(who): address \(a) is already used by \(prev)") } else { taken[k] = who }
        }
        for n in networks { claim(n.id, n.gateway, "the gateway of \(n.name)") }
        if let a = node.ingressAddress, let ing = networks.first(where: \.isIngress) {
            claim(ing.id, a, "node \(node.id)'s ingress address")
        }

        var interfaces: Set<String> = []
        for e in localEndpoints {
            guard let n = networksByID[e.network] else {
                out.append("task \(e.id): unknown network \(e.network)")
                continue
            }
            if !n.subnet.contains(e.address) { out.append("task \(e.id): \(e.address) is outside \(n.name)'s subnet \(n.subnet)") }
            claim(e.network, e.address, "task \(e.id)")
            if let a6 = e.address6 {
                if let p = n.problem(address6: a6, of: e.address) { out.append("task \(e.id): \(p)") }
                claim(e.network, a6, "task \(e.id)")
            }
            if !interfaces.insert("\(e.namespace)/\(e.interfaceName)").inserted {
                out.append("task \(e.id): interface \(e.interfaceName) in \(e.namespace) is attached twice")
            }
            if e.interfaceName.utf8.count > 15 || e.interfaceName.isEmpty {
                out.append("task \(e.id): bad interface name \(e.interfaceName)")
            }
            if e.namespace.isEmpty { out.append("task \(e.id): no namespace") }
        }
        let defaults = Dictionary(grouping: localEndpoints.filter(\.carriesDefaultRoute), by: \.namespace)
        for (ns, eps) in defaults where eps.count > 1 {
            out.append("namespace \(ns): \(eps.count) attachments claim the default route (\(eps.map(\.network).joined(separator: ", ")))")
        }
        for r in remoteEndpoints {
            guard let n = networksByID[r.network] else {
                out.append("remote endpoint \(r.address): unknown network \(r.network)")
                continue
            }
            if !n.holds(r.address) { out.append("remote endpoint \(r.address) is outside \(n.name)'s subnets") }
            if r.nodeID == node.id { out.append("remote endpoint \(r.address) names this node (\(node.id))") }
            if !r.nodeAddress.isIPv4 { out.append("remote endpoint \(r.address): node address \(r.nodeAddress) must be IPv4") }
            claim(r.network, r.address, "the remote endpoint on node \(r.nodeID)")
        }

        var serviceIDs: Set<String> = []
        var published: [String: String] = [:]
        for s in services {
            if !serviceIDs.insert(s.id).inserted { out.append("service \(s.id) is listed twice") }
            for v in s.allVIPs {
                guard let n = networksByID[v.network] else {
                    out.append("service \(s.name): VIP on unknown network \(v.network)")
                    continue
                }
                if !v.address.isIPv4 {
                    out.append(
                        "service \(s.name): VIP \(v.address): give the IPv4 VIP; on a dual-stack network its IPv6 twin is balanced with it")
                } else if !n.subnet.contains(v.address) {
                    out.append("service \(s.name): VIP \(v.address) is outside \(n.subnet)")
                }
                claim(v.network, v.address, "the VIP of service \(s.name)")
            }
            var total: UInt64 = 0
            for b in s.allBackends {
                guard let n = networksByID[b.network] else {
                    out.append("service \(s.name): backend on unknown network \(b.network)")
                    continue
                }
                if !b.address.isIPv4 {
                    out.append(
                        "service \(s.name): backend \(b.address): give the IPv4 backend; on a dual-stack network its IPv6 twin is balanced with it"
                    )
                } else if !n.subnet.contains(b.address) {
                    out.append("service \(s.name): backend \(b.address) is outside \(n.subnet)")
                }
                if b.effectiveWeight > 100 { out.append("service \(s.name): backend \(b.address) weight \(b.effectiveWeight) is over 100") }
                total += UInt64(b.effectiveWeight)
            }
            if total > 4096 { out.append("service \(s.name): weights add up to \(total), over 4096") }
            for p in s.allPorts {
                if p.published == 0 || p.target == 0 { out.append("service \(s.name): port 0 cannot be published") }
                let key = "\(p.published)/\(p.proto.rawValue)"
                if let other = published[key] {
                    out.append("service \(s.name): published port \(key) is already used by service \(other)")
                } else {
                    published[key] = s.name
                }
                if !networks.contains(where: \.isIngress) {
                    out.append("service \(s.name): publishing \(key) needs the ingress network in the state")
                }
            }
        }
        return out
    }

    public func validate() throws(DataplaneError) {
        let p = problems()
        if !p.isEmpty { throw .invalidState(p) }
    }
}

extension DataplaneState {
    /// What is wrong with `peerKeys` (never printing a key).
    func keyProblems() -> [String] {
        var out: [String] = []
        var seen: Set<String> = []
        var inbound: Set<UInt32> = []
        for p in peerKeys {
            if !seen.insert(p.nodeID).inserted { out.append("keys for node \(p.nodeID) are listed twice") }
            if p.nodeID == node.id { out.append("keys for node \(p.nodeID): that is this node") }
            if !p.nodeAddress.isIPv4 { out.append("keys for node \(p.nodeID): address \(p.nodeAddress) must be IPv4") }
            if p.keys.isEmpty { out.append("keys for node \(p.nodeID): no key") }
            var generations: Set<UInt64> = []
            for k in p.keys {
                if !generations.insert(k.generation).inserted {
                    out.append("keys for node \(p.nodeID): generation \(k.generation) is listed twice")
                }
                for (what, sa) in [("outbound", k.outbound), ("inbound", k.inbound)] {
                    if sa.key.count != 16 || sa.salt.count != 4 {
                        out.append("keys for node \(p.nodeID) generation \(k.generation): \(what) key must be 16 bytes and salt 4 bytes")
                    }
                    if sa.spi < 256 {
                        out.append("keys for node \(p.nodeID) generation \(k.generation): \(what) \(sa) is reserved (below 256)")
                    }
                }
                // Inbound SAs all have this node as destination: their SPIs must differ.
                if !inbound.insert(k.inbound.spi).inserted {
                    out.append("keys for node \(p.nodeID) generation \(k.generation): inbound \(k.inbound) is used twice")
                }
            }
        }
        return out
    }
}
