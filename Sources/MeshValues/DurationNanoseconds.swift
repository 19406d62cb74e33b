extension Duration {
    /// Whole nanoseconds, saturating: what swift-metrics timers record.
    public var nanoseconds: Int64 {
        let (s, atto) = components
        let (n, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return s < 0 ? .min : .max }
        return n.addingReportingOverflow(atto / 1_000_000_000).partialValue
    }
}
