import MeshKernel

/// How weighted backends become the slot list a `numgen inc mod M` walks: weights reduced by
/// their gcd, each backend repeated weight times, interleaved so consecutive connections spread.
/// Draining backends (weight 0) get no slot.
enum SlotLayout {
    static func expand(_ targets: [BalancerState.Target]) -> [BalancerState.Target] {
        let live = targets.filter { $0.weight > 0 }
        guard !live.isEmpty else { return [] }
        let g = live.map(\.weight).reduce(0, gcd)
        let counts = live.map { $0.weight / g }
        var out: [BalancerState.Target] = []
        for round in 0..<(counts.max() ?? 0) {
            for (i, t) in live.enumerated() where counts[i] > round {
                var u = t
                u.weight = 1
                out.append(u)
            }
        }
        return out
    }
    static func gcd(_ a: UInt32, _ b: UInt32) -> UInt32 { b == 0 ? a : gcd(b, a % b) }
}
