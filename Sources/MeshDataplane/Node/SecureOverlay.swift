import MeshKernel

/// The node namespace's share of encrypted overlays: a drop rule for unprotected VXLAN of every
/// secure VNI, and per peer node the ESP SAs and policies that protect VXLAN between the two
/// underlay addresses. Both live in the node namespace because vxlan0's UDP socket does (it is
/// created there and moved into the sandbox).
///
///     table inet meshd_esp
///       set secure_vnis { type integer(3) }       VNIs as VXLAN carries them (3 bytes, network order)
///       set vxlan_port  { type inet_service }     the data-path port
///       input:  priority -150  meta l4proto udp  th dport @vxlan_port  @th,96,24 @secure_vnis
///                              meta secpath missing  counter drop
///       output: priority -150  meta l4proto udp  th dport @vxlan_port  @th,96,24 @secure_vnis
///                              rt ipsec missing      counter drop
///
///     per peer P (L is this node), reqid 0x6d657368 ("mesh"), per key generation g:
///       state  src P dst L spi in(g)   aead rfc4106(gcm(aes)) …  (decrypts what P sends)
///       state  src L dst P spi out(g)  aead rfc4106(gcm(aes)) …  (encrypts what L sends)
///       policy src P/32 dst L/32 proto udp dport <port> dir in   tmpl reqid … (any SPI)
///       policy src L/32 dst P/32 proto udp dport <port> dir out  tmpl reqid … spi out(primary)
///
/// Why it fails closed: a VXLAN packet of a secure VNI leaves only if its route carries an XFRM
/// transform (`rt ipsec`), which only an `out` policy with a usable state gives; one arrives only
/// if it was decrypted (`secpath`). The kernel hands VXLAN to the vxlan socket's encap handler
/// before any XFRM `in` policy check, so on input the nftables rule is the check. The rule goes
/// in before the network's sandbox (and with it the first endpoint) and leaves after it; a
/// missing pair (no keys yet, or a kernel that refused them) therefore drops, never leaks.
///
/// Rotation, per the pair's `keys` (primary first): new states are added first, then the `out`
/// policy is replaced in one step to name the new primary SPI, and states no longer listed are
/// deleted last. The manager moves both nodes through [old, new] → [new, old] → [new].
enum SecureOverlay {
    static let table = NFTTable(.inet, "meshd_esp")
    static var vnis: NFTSet { NFTSet(table, "secure_vnis", key: NFTKeyType(.integer(bytes: 3))) }
    static var port: NFTSet { NFTSet(table, "vxlan_port", key: NFTKeyType(.inetService)) }
    /// Ties meshd's states to its policies' templates, and tells them apart from anyone else's.
    static let reqid: UInt32 = 0x6d65_7368
    static let priority: UInt32 = 100

    /// What the node namespace holds of it, read once at start, then tracked.
    struct Applied: Equatable, Sendable {
        var table = false
        var vnis: Set<UInt32> = []
        var port: UInt16?
        var pairs: [IPAddress: Pair] = [:]
        /// The table is there but a chain or its drop rule is not (someone's `nft` changed it): it is
        /// rebuilt whole, in the same transaction as its removal, so there is no moment without it.
        var damaged = false

        struct Pair: Equatable, Sendable {
            var states: [XFRMStateID: XFRMState] = [:]
            var inPolicy: XFRMPolicy?
            var outPolicy: XFRMPolicy?
        }
    }

    /// What one change makes the node do, in this order: `before` (nftables, ahead of any
    /// sandbox: the drop rule for new secure VNIs), `xfrm` (the pairs), `after` (nftables, once
    /// the sandboxes are gone: VNIs no longer secure).
    struct Plan: Sendable {
        var before = NFTBatch()
        var xfrm: [XFRMOperation] = []
        var after = NFTBatch()
        /// XFRM removals that must wait until the sandboxes are synced: policies for the old data-path
        /// port while vxlan devices may still send to it.
        var xfrmAfter: [XFRMOperation] = []
        var isEmpty: Bool { before.isEmpty && xfrm.isEmpty && after.isEmpty && xfrmAfter.isEmpty }
    }

    static func vniKey(_ vni: UInt32) -> NFTElement {
        NFTElement(NFTValue(bytes: [UInt8(vni >> 16 & 0xff), UInt8(vni >> 8 & 0xff), UInt8(vni & 0xff)]))
    }
    static func vni(_ e: NFTElement) -> UInt32? {
        let b = e.key.bytes
        guard b.count == 3 else { return nil }
        return UInt32(b[0]) << 16 | UInt32(b[1]) << 8 | UInt32(b[2])
    }

    static func read(nft: NFTSocket, xfrm: XFRMHandle?, local: IPAddress) async throws(KernelError) -> Applied {
        var a = Applied()
        if try nft.listTables(family: .inet).contains(where: { $0.name == table.name }) {
            a.table = true
            let rules = try nft.listRules(table)
            a.damaged = ["input", "output"].contains { chain in
                !rules.contains { $0.chain == chain && $0.expressionNames.contains("lookup") && $0.expressionNames.last == "immediate" }
            }
            for e in try nft.listElements(vnis) { if let v = vni(e) { a.vnis.insert(v) } }
            if let e = try nft.listElements(port).first, e.key.bytes.count == 2 {
                a.port = UInt16(e.key.bytes[0]) << 8 | UInt16(e.key.bytes[1])
            }
        }
        guard let xfrm else { return a }
        for e in try await xfrm.stateList() where e.state.reqid == reqid {
            let s = e.state
            let peer = s.source == local ? s.destination : s.source
            a.pairs[peer, default: .init()].states[s.id] = s
        }
        for e in try await xfrm.policyList() where e.policy.templates.contains(where: { $0.reqid == reqid }) {
            let p = e.policy
            switch p.direction {
            case .in: a.pairs[p.selector.source.address, default: .init()].inPolicy = p
            case .out: a.pairs[p.selector.destination.address, default: .init()].outPolicy = p
            case .forward: continue
            }
        }
        return a
    }

    // MARK: - the wanted objects

    static func state(_ src: IPAddress, _ dst: IPAddress, _ sa: SAKey) throws(KernelError) -> XFRMState {
        XFRMState(source: src, destination: dst, spi: sa.spi, reqid: reqid, aead: try .aesGCM128(key: sa.key, salt: sa.salt))
    }

    static func inPolicy(_ p: ESPPair, port: UInt16) -> XFRMPolicy {
        XFRMPolicy(
            selector: .vxlan(from: p.remote, to: p.local, port: port), direction: .in,
            templates: [XFRMTemplate(source: p.remote, destination: p.local, reqid: reqid)], priority: priority)
    }

    static func outPolicy(_ p: ESPPair, port: UInt16) -> XFRMPolicy {
        XFRMPolicy(
            selector: .vxlan(from: p.local, to: p.remote, port: port), direction: .out,
            templates: [XFRMTemplate(source: p.local, destination: p.remote, reqid: reqid, spi: p.keys[0].outbound.spi)],
            priority: priority)
    }

    static func states(_ p: ESPPair) throws(KernelError) -> [XFRMState] {
        var out: [XFRMState] = []
        for k in p.keys {
            out.append(try state(p.remote, p.local, k.inbound))
            out.append(try state(p.local, p.remote, k.outbound))
        }
        return out
    }

    // MARK: - plan

    /// With `only`, just those pairs are compared (a change's cost); the nftables part is a few
    /// elements and always compared.
    static func plan(
        _ a: inout Applied, to want: NodeModel, only: Set<IPAddress>? = nil, changes: inout [String]
    ) throws(KernelError) -> Plan {
        var plan = Plan()

        // nftables: the table with its rules once, VNIs added before, removed after.
        let needTable = !want.secureVNIs.isEmpty
        if a.table && a.damaged {
            plan.before.delete(table)
            a = Applied(pairs: a.pairs)
            changes.append("node: table inet meshd_esp was changed outside meshd: rebuilt")
        }
        if needTable && !a.table {
            plan.before.add(table)
            plan.before.add(vnis)
            plan.before.add(port)
            for (name, hook, check) in [
                ("input", NFTHook.input, [NFTExpr.meta(.secpath, into: .r(0))]), ("output", .output, [.rt(.ipsec, into: .r(0))]),
            ] {
                let c = NFTChain(table, name, base: .init(type: .filter, hook: hook, priority: -150))
                plan.before.add(c)
                let match =
                    [NFTExpr.meta(.l4proto, into: .r(0)), .cmp(.eq, .r(0), .proto(17))]
                    + NFTExpr.inSet([.thDport], port.name)
                    + [
                        .payload(.transport, offset: 12, length: 3, into: .r(0)),
                        .lookup(set: vnis.name, from: .r(0), into: nil, invert: false),
                    ]
                    + check + [.cmp(.eq, .r(0), NFTValue(bytes: [0])), .counter, .verdict(.drop)]
                plan.before.add(NFTRule(c, match, comment: name == "input" ? "secure VNI not decrypted" : "secure VNI not encrypted"))
            }
            a.table = true
            a.vnis = []
            a.port = nil
            changes.append("node: add table inet meshd_esp")
        }
        if a.table && needTable && a.port != want.dataPathPort {
            // The new port before the sandboxes move to it, the old one only after they have: until
            // then running vxlan devices still send to (and peers to) the old port, which must keep
            // its drop rule (found by review: dropping it first opened a cleartext window).
            plan.before.add([NFTElement(.port(want.dataPathPort))], to: port)
            if let old = a.port { plan.after.delete([NFTElement(.port(old))], from: port) }
            a.port = want.dataPathPort
            changes.append("node: drop unprotected VXLAN to port \(want.dataPathPort)")
        }
        let addVNIs = want.secureVNIs.subtracting(a.vnis).sorted()
        if !addVNIs.isEmpty {
            plan.before.add(addVNIs.map(vniKey), to: vnis)
            a.vnis.formUnion(addVNIs)
            for v in addVNIs { changes.append("node: secure VNI \(v) (unprotected VXLAN dropped)") }
        }
        if a.table && !needTable {
            plan.after.delete(table)
            for v in a.vnis.sorted() { changes.append("node: VNI \(v) no longer secure") }
            a = Applied(pairs: a.pairs)
            changes.append("node: delete table inet meshd_esp")
        } else {
            let delVNIs = a.vnis.subtracting(want.secureVNIs).sorted()
            if !delVNIs.isEmpty {
                plan.after.delete(delVNIs.map(vniKey), from: vnis)
                a.vnis.subtract(delVNIs)
                for v in delVNIs { changes.append("node: VNI \(v) no longer secure") }
            }
        }

        // XFRM, pair by pair: additions, then the policies, then what is no longer listed.
        let peers = only.map { Array($0) } ?? Array(Set(a.pairs.keys).union(want.esp.keys))
        for peer in peers.sorted() {
            let have = a.pairs[peer] ?? .init()
            guard let p = want.esp[peer] else {
                guard a.pairs[peer] != nil else { continue }
                // States first: a policy without its state drops; the drop rule covers the rest.
                for id in have.states.keys.sorted(by: { $0.spi < $1.spi }) { plan.xfrm.append(.stateDelete(id)) }
                if let o = have.outPolicy { plan.xfrm.append(.policyDelete(o.id)) }
                if let i = have.inPolicy { plan.xfrm.append(.policyDelete(i.id)) }
                a.pairs[peer] = nil
                changes.append("node: esp \(peer): remove")
                continue
            }
            var next = Applied.Pair()
            var adds: [XFRMOperation] = [], dels: [XFRMOperation] = []
            for s in try states(p) {
                next.states[s.id] = s
                if let old = have.states[s.id] {
                    if old == s { continue }
                    dels.append(.stateDelete(old.id))  // same SPI, other key: only after a manager error
                }
                adds.append(.stateAdd(s))
                changes.append("node: esp \(peer): state \(s)")
            }
            // A reused SPI must go before it comes back.
            plan.xfrm += dels + adds
            let pin = inPolicy(p, port: want.dataPathPort), pout = outPolicy(p, port: want.dataPathPort)
            // A policy whose selector changed (the data-path port) is replaced by adding the new one
            // now and deleting the old one after the sandboxes have moved.
            if have.inPolicy != pin {
                if let old = have.inPolicy, old.id != pin.id { plan.xfrmAfter.append(.policyDelete(old.id)) }
                plan.xfrm.append(.policyUpdate(pin))
                changes.append("node: esp \(peer): policy \(pin.selector) dir in")
            }
            if have.outPolicy != pout {
                if let old = have.outPolicy, old.id != pout.id { plan.xfrmAfter.append(.policyDelete(old.id)) }
                plan.xfrm.append(.policyUpdate(pout))
                changes.append("node: esp \(peer): policy \(pout.selector) dir out spi \(p.keys[0].outbound)")
            }
            next.inPolicy = pin
            next.outPolicy = pout
            for id in have.states.keys.sorted(by: { $0.spi < $1.spi }) where next.states[id] == nil {
                plan.xfrm.append(.stateDelete(id))
                changes.append("node: esp \(peer): delete state spi \(XFRMState.spiText(id.spi))")
            }
            a.pairs[peer] = next
        }
        return plan
    }
}
