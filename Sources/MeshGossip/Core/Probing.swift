/// The probe in flight (at most one per protocol period, as in SWIM).
struct ActiveProbe {
    var seq: UInt32
    var target: String
    var ackDeadline: Duration
    var end: Duration
    var indirectSent = false
    var expectedNacks = 0
    var nacks = 0
    var acked = false
    /// Acked before we had to ask for help: the only outcome that improves our health score.
    var ackedDirectly = false
}

/// An indirect probe we run for someone else.
struct Relay {
    var requester: PeerAddress
    var originalSeq: UInt32
    var deadline: Duration
    var wantNack: Bool
}

extension GossipNode {
    mutating func probeTimers(at now: Duration) {
        if var p = probe {
            if !p.acked && !p.indirectSent && now >= p.ackDeadline {
                p.indirectSent = true
                p.expectedNacks = sendIndirectProbes(for: p, at: now)
                probe = p
            }
            if now >= p.end || p.acked {
                finishProbe(p, at: now)
                probe = nil
            }
        }
        if probe == nil && now >= nextProbeAt {
            startProbe(at: now)
            nextProbeAt = now + awareness.scale(config.probeInterval)
        }
    }

    /// Randomized round-robin: walk a shuffled list, reshuffle each pass (bounded worst case to
    /// reach any given node, unlike uniform random picks).
    private mutating func nextProbeTarget() -> Member? {
        for _ in 0..<2 {
            while probeIndex < probeOrder.count {
                let n = probeOrder[probeIndex]
                probeIndex += 1
                if n != name, let m = members[n], m.state.isLive { return m }
            }
            probeOrder = memberNames.elements.shuffled(using: &rng)
            probeIndex = 0
        }
        return nil
    }

    private mutating func startProbe(at now: Duration) {
        guard !leaving, let target = nextProbeTarget() else { return }
        let seq = nextSeq()
        probe = ActiveProbe(
            seq: seq, target: target.name, ackDeadline: now + awareness.scale(config.probeTimeout),
            end: now + awareness.scale(config.probeInterval))
        var msgs: [Message] = [.ping(seq: seq, target: target.name, source: name, sourceAddress: address)]
        // Lifeguard's buddy system: tell a suspect directly so it can refute at once.
        if target.state == .suspect {
            msgs.append(.suspect(AccusationMessage(incarnation: target.incarnation, node: target.name, from: name)))
        }
        sendPacket(to: target.address, msgs)
    }

    /// Asks k peers to probe the target and tries TCP ourselves. Returns how many nacks to expect.
    private mutating func sendIndirectProbes(for p: ActiveProbe, at now: Duration) -> Int {
        guard let target = members[p.target] else { return 0 }
        let helpers = liveNames.sample(config.indirectChecks, using: &rng) { [name] n in n != name && n != p.target }
        for h in helpers {
            guard let m = members[h] else { continue }
            sendPacket(
                to: m.address,
                [
                    .indirectPing(
                        seq: p.seq, target: p.target, targetAddress: target.address,
                        source: name, sourceAddress: address, wantNack: true)
                ])
        }
        // TCP fallback: a target whose UDP is blocked but which is alive must not be declared dead.
        sendStream(to: target.address, .ping(seq: p.seq, target: p.target, source: name, sourceAddress: address))
        return helpers.count
    }

    private mutating func finishProbe(_ p: ActiveProbe, at now: Duration) {
        if p.acked {
            // As memberlist: only a direct ack earns a point back; an indirect or TCP rescue is neutral.
            if p.ackedDirectly { awareness.apply(-1) }
            return
        }
        stats.probesFailed += 1
        // Lifeguard: helpers that did not even nack suggest our own network or CPU is the problem.
        if p.indirectSent && p.expectedNacks > 0 { awareness.apply(p.expectedNacks - p.nacks) }
        guard let m = members[p.target], m.state.isLive else { return }
        handleSuspect(AccusationMessage(incarnation: m.incarnation, node: m.name, from: name), at: now)
    }

    mutating func handleAck(_ seq: UInt32, viaStream: Bool, at now: Duration) {
        if var p = probe, p.seq == seq, !p.acked {
            p.acked = true
            p.ackedDirectly = !p.indirectSent
            if viaStream {
                stats.tcpOnlyProbes += 1
                emit(.warning("UDP probes of \(p.target) failed but TCP worked: is UDP \(address.port) blocked?"))
            }
            probe = p
            return
        }
        if let r = relays.removeValue(forKey: seq) {
            sendPacket(to: r.requester, [.ack(seq: r.originalSeq)])
        }
    }

    mutating func relayProbe(
        seq: UInt32, target: String, targetAddress: PeerAddress, requester: PeerAddress, wantNack: Bool, at now: Duration
    ) {
        let mine = nextSeq()
        // Nack a little before the requester's probe period ends, or the nack itself arrives late and
        // counts against the requester's health.
        relays[mine] = Relay(requester: requester, originalSeq: seq, deadline: now + config.probeTimeout * 0.8, wantNack: wantNack)
        sendPacket(to: targetAddress, [.ping(seq: mine, target: target, source: name, sourceAddress: address)])
    }

    mutating func expireRelays(at now: Duration) {
        guard !relays.isEmpty else { return }
        for (k, r) in relays where now >= r.deadline {
            relays[k] = nil
            if r.wantNack { sendPacket(to: r.requester, [.nack(seq: r.originalSeq)]) }
        }
    }
}
