import MeshValues
/// The core and the simulator draw every random choice from one seeded generator (MeshKernel's
/// SplitMix64), so a seed replays a run exactly.
public typealias SeededRandom = SplitMix64

extension SplitMix64 {
    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// A set with O(1) insert, remove and uniform random pick (array + index, swap-remove).
struct IndexedSet<Element: Hashable> {
    private(set) var elements: [Element] = []
    private var position: [Element: Int] = [:]

    var count: Int { elements.count }
    func contains(_ e: Element) -> Bool { position[e] != nil }

    @discardableResult
    mutating func insert(_ e: Element) -> Bool {
        guard position[e] == nil else { return false }
        position[e] = elements.count
        elements.append(e)
        return true
    }

    @discardableResult
    mutating func remove(_ e: Element) -> Bool {
        guard let i = position.removeValue(forKey: e) else { return false }
        let last = elements.removeLast()
        if i < elements.count {
            elements[i] = last
            position[last] = i
        }
        return true
    }

    /// Up to `k` distinct elements passing `filter`, chosen at random: random draws first (cheap
    /// when most elements qualify), then a shuffled scan if the draws did not find enough.
    func sample<G: RandomNumberGenerator>(_ k: Int, using rng: inout G, where filter: (Element) -> Bool) -> [Element] {
        guard k > 0, !elements.isEmpty else { return [] }
        var picked: [Element] = []
        var seen = Set<Int>()
        if elements.count > 4 * k {
            for _ in 0..<(8 * k) {
                let i = Int.random(in: 0..<elements.count, using: &rng)
                guard seen.insert(i).inserted, filter(elements[i]) else { continue }
                picked.append(elements[i])
                if picked.count == k { return picked }
            }
        }
        for i in Array(elements.indices).shuffled(using: &rng) where !seen.contains(i) && filter(elements[i]) {
            picked.append(elements[i])
            if picked.count == k { break }
        }
        return picked
    }
}
