import Foundation

/// The protocol's formulas as pure functions, table-tested against memberlist's numbers.
public enum Lifeguard {
    /// How many times a broadcast is sent: `mult · ceil(log10(n + 1))`.
    public static func retransmitLimit(mult: Int, nodes n: Int) -> Int {
        mult * Int(ceil(log10(Double(max(n, 0) + 1))))
    }

    /// Suspicion floor: `mult · max(1, log10 n) · interval`.
    public static func suspicionMin(mult: Int, nodes n: Int, interval: Duration) -> Duration {
        let f = Double(mult) * max(1, log10(Double(max(n, 1))))
        return interval * f
    }

    /// Lifeguard's dynamic suspicion: starts at `max`, falls towards `min` as independent
    /// confirmations arrive, reaching it at `k` confirmations.
    public static func suspicionTimeout(confirmations n: Int, k: Int, min: Duration, max: Duration) -> Duration {
        guard k >= 1 else { return min }
        let frac = log(Double(n) + 1) / log(Double(k) + 1)
        let t = max - (max - min) * frac
        return t < min ? min : t
    }

    /// Push/pull interval scaled up above 32 nodes: `× (ceil(log2 n − log2 32) + 1)`.
    public static func pushPullScale(_ interval: Duration, nodes n: Int) -> Duration {
        guard n > 32 else { return interval }
        let m = Int(ceil(log2(Double(n)) - log2(32.0))) + 1
        return interval * m
    }
}

/// Lifeguard's local health: 0 is healthy. Missed nacks and having to refute raise it, successful
/// probes lower it, and every probe interval and timeout is multiplied by `score + 1`.
public struct Awareness: Sendable, Equatable {
    public private(set) var score = 0
    public let max: Int

    public init(max: Int) { self.max = max }

    public mutating func apply(_ delta: Int) { score = Swift.min(Swift.max(score + delta, 0), max - 1) }
    public func scale(_ d: Duration) -> Duration { d * (score + 1) }
}
