/// Applying alive / suspect / dead: incarnation numbers order the claims about one node, and only
/// the node itself can raise its own incarnation (to refute).
extension GossipNode {
    mutating func handleAlive(_ a: AliveMessage, at now: Duration, broadcast: Bool = true) {
        if a.node == name {
            // A claim about us from an earlier life with a higher incarnation: outbid it.
            if a.incarnation > incarnation && !leaving { refute(atLeast: a.incarnation, at: now) }
            return
        }
        if var m = members[a.node] {
            guard a.incarnation > m.incarnation else { return }
            let old = m.state
            m.incarnation = a.incarnation
            m.address = a.address
            m.state = .alive
            if old != .alive { m.since = now }
            members[a.node] = m
            suspicions[a.node] = nil
            if old != .alive {
                if !old.isLive {
                    liveNames.insert(a.node)
                    restoreEntries(owner: a.node)
                }
                emit(.member(name: a.node, address: a.address, state: .alive, incarnation: a.incarnation))
            }
        } else {
            members[a.node] = Member(name: a.node, address: a.address, incarnation: a.incarnation, state: .alive, since: now)
            memberNames.insert(a.node)
            liveNames.insert(a.node)
            emit(.member(name: a.node, address: a.address, state: .alive, incarnation: a.incarnation))
        }
        if broadcast { enqueueMembership(.alive(a), about: a.node) }
    }

    mutating func handleSuspect(_ s: AccusationMessage, from sender: PeerAddress? = nil, at now: Duration) {
        if s.node == name {
            if s.incarnation >= incarnation && !leaving {
                refute(atLeast: s.incarnation, at: now)
                awareness.apply(1)
            } else if !leaving {
                answerStale(about: name, to: sender)
            }
            return
        }
        guard var m = members[s.node] else { return }
        guard s.incarnation >= m.incarnation else {
            answerStale(about: s.node, to: sender)
            return
        }
        guard m.state.isLive else { return }
        if m.state == .suspect {
            // An independent confirmation shortens the timer; pass it on so others count it too.
            if var sus = suspicions[s.node], sus.confirm(s.from) {
                suspicions[s.node] = sus
                enqueueMembership(.suspect(s), about: s.node)
            }
            return
        }
        m.state = .suspect
        m.incarnation = s.incarnation
        m.since = now
        members[s.node] = m
        stats.suspicions += 1
        suspicions[s.node] = newSuspicion(accuser: s.from, at: now)
        // Probe it next ourselves: an independent verdict (confirmation or ack) sooner, which cuts
        // the slow tail of detection without shortening anyone's chance to refute.
        if s.from != name && config.probing {
            probeOrder.insert(s.node, at: min(probeIndex, probeOrder.count))
        }
        emit(.member(name: m.name, address: m.address, state: .suspect, incarnation: m.incarnation))
        enqueueMembership(.suspect(s), about: s.node)
    }

    mutating func handleDead(_ d: AccusationMessage, from sender: PeerAddress? = nil, at now: Duration) {
        if d.node == name {
            if !leaving && d.incarnation >= incarnation {
                refute(atLeast: d.incarnation, at: now)
            } else if !leaving {
                answerStale(about: name, to: sender)
            }
            return
        }
        guard var m = members[d.node] else { return }
        guard d.incarnation >= m.incarnation else {
            answerStale(about: d.node, to: sender)
            return
        }
        let newState: MemberState = d.from == d.node ? .left : .dead
        guard m.state.isLive || (m.state == .dead && newState == .left) else { return }
        let wasLive = m.state.isLive
        m.state = newState
        m.incarnation = d.incarnation
        m.since = now
        members[d.node] = m
        suspicions[d.node] = nil
        if wasLive {
            liveNames.remove(d.node)
            withdrawEntries(owner: d.node)
        }
        emit(.member(name: m.name, address: m.address, state: newState, incarnation: m.incarnation))
        enqueueMembership(.dead(d), about: d.node)
    }

    /// The sender accused a member with an incarnation already refuted: it missed the refutation
    /// (its budget ran out before reaching it). Tell it directly rather than let its timer kill a
    /// live member; this costs one datagram per stale accusation and only then.
    mutating func answerStale(about node: String, to sender: PeerAddress?) {
        guard let sender, sender != address, let m = members[node], m.state == .alive else { return }
        sendPacket(to: sender, [.alive(AliveMessage(incarnation: m.incarnation, node: node, address: m.address))], piggyback: false)
    }

    /// Raise our incarnation above the accusation and tell everyone.
    mutating func refute(atLeast inc: UInt32, at now: Duration) {
        incarnation = max(incarnation, inc) &+ 1
        stats.refutations += 1
        members[name]?.incarnation = incarnation
        enqueueMembership(.alive(AliveMessage(incarnation: incarnation, node: name, address: address)), about: name)
    }

    /// Members that may still receive gossip: live ones, and recently dead ones (so a member
    /// declared dead by mistake hears it and refutes).
    func isGossipTarget(_ n: String, at now: Duration) -> Bool {
        guard n != name, let m = members[n] else { return false }
        return m.state.isLive || (m.state == .dead && now - m.since < config.gossipToTheDead)
    }

    /// Forget members dead for longer than `deadMemberReap`, with their entries.
    mutating func reapMembers(at now: Duration) {
        let old = members.values.filter { !$0.state.isLive && now - $0.since >= config.deadMemberReap }
        for m in old {
            members[m.name] = nil
            memberNames.remove(m.name)
            dropEntries(owner: m.name)
            if let nets = networkEvents[m.name] { for net in nets.keys { networkNodes[net]?.remove(m.name) } }
            networkEvents[m.name] = nil
        }
    }
}
