/// One suspected member's timer (Lifeguard's dynamic suspicion): the deadline starts at `max`
/// after the suspicion began and moves towards `min` as other members independently confirm.
struct Suspicion {
    var start: Duration
    var min: Duration
    var max: Duration
    var k: Int
    /// Who raised it: their word does not count twice.
    var accuser: String
    var confirmers: Set<String>

    var deadline: Duration {
        start + Lifeguard.suspicionTimeout(confirmations: confirmers.count, k: k, min: min, max: max)
    }

    /// Returns true if `from` is a new, independent confirmation.
    mutating func confirm(_ from: String) -> Bool {
        guard from != accuser, confirmers.count < k else { return false }
        return confirmers.insert(from).inserted
    }
}

extension GossipNode {
    func newSuspicion(accuser: String, at now: Duration) -> Suspicion {
        let n = liveCount
        let min = Lifeguard.suspicionMin(mult: config.suspicionMult, nodes: n, interval: config.probeInterval)
        let max = min * config.suspicionMaxTimeoutMult
        // Too few members to expect k confirmations: go straight to the floor.
        let k = n - 2 < config.suspicionMult - 2 ? 0 : config.suspicionMult - 2
        return Suspicion(start: now, min: min, max: max, k: k, accuser: accuser, confirmers: [])
    }

    mutating func expireSuspicions(at now: Duration) {
        guard !suspicions.isEmpty else { return }
        for (node, s) in suspicions where now >= s.deadline {
            suspicions[node] = nil
            guard let m = members[node], m.state == .suspect else { continue }
            handleDead(AccusationMessage(incarnation: m.incarnation, node: node, from: name), at: now)
        }
    }
}
