import Foundation

/// A task's health check as dockerd runs one (`HEALTHCHECK`, `--health-*`), its defaults applied.
public struct HealthCheck: Sendable, Equatable {
    public enum Test: Sendable, Equatable {
        /// `CMD`: run as given (exec form).
        case exec([String])
        /// `CMD-SHELL`: run by `/bin/sh -c`.
        case shell(String)
    }
    public var test: Test
    public var interval: Duration
    public var timeout: Duration
    public var startPeriod: Duration
    public var startInterval: Duration
    public var retries: Int

    /// dockerd's defaults (daemon/health.go): a probe every 30 s, 30 s to answer, 3 failures in a
    /// row to be unhealthy, a probe every 5 s during a start period.
    public static let defaultInterval: Duration = .seconds(30)
    public static let defaultTimeout: Duration = .seconds(30)
    public static let defaultStartInterval: Duration = .seconds(5)
    public static let defaultRetries = 3

    /// nil for no check: an empty test (the image's own check, which a node does not read) or `NONE`.
    /// Zeros take the defaults, as dockerd's do.
    public init?(
        test: [String], intervalNanos: Int64 = 0, timeoutNanos: Int64 = 0, startPeriodNanos: Int64 = 0, startIntervalNanos: Int64 = 0,
        retries: Int64 = 0
    ) {
        switch test.first {
        case "CMD" where test.count > 1: self.test = .exec(Array(test.dropFirst()))
        case "CMD-SHELL" where test.count == 2: self.test = .shell(test[1])
        default: return nil
        }
        func duration(_ n: Int64, _ otherwise: Duration) -> Duration { n > 0 ? .nanoseconds(n) : otherwise }
        interval = duration(intervalNanos, Self.defaultInterval)
        timeout = duration(timeoutNanos, Self.defaultTimeout)
        startPeriod = duration(startPeriodNanos, .zero)
        startInterval = duration(startIntervalNanos, Self.defaultStartInterval)
        self.retries = retries > 0 ? Int(retries) : Self.defaultRetries
    }

    /// The argv a probe runs inside the task.
    public var argv: [String] {
        switch test {
        case .exec(let a): return a
        case .shell(let s): return ["/bin/sh", "-c", s]
        }
    }
}

/// What one probe gave: Docker's HealthcheckResult.
public struct HealthProbe: Sendable, Equatable {
    public var start: Date
    public var end: Date
    /// 0 healthy; anything else (a timeout is -1) a failure.
    public var exitCode: Int32
    /// The start of what it printed (dockerd keeps 4 KiB).
    public var output: String
    public init(start: Date, end: Date, exitCode: Int32, output: String) {
        self.start = start
        self.end = end
        self.exitCode = exitCode
        self.output = output
    }
    public static let outputLimit = 4096
}

/// A task's health as its probes made it, by dockerd's rules (daemon/health.go's
/// handleProbeResult). A value: the agent owns the clock and the probes, and hands each result here.
public struct HealthState: Sendable, Equatable {
    public enum Status: String, Sendable { case starting, healthy, unhealthy }
    public private(set) var status: Status = .starting
    public private(set) var failingStreak = 0
    /// Some probe has passed since the task started: until then the task has never been ready,
    /// whatever its status (a task that fails its first probes turns unhealthy without passing).
    public private(set) var hasPassed = false
    /// The last five probes, oldest first, as `docker inspect` shows them.
    public private(set) var log: [HealthProbe] = []
    public static let logLength = 5

    public init() {}

    /// Records one probe. `inStartPeriod`: the probe began within the check's start period after
    /// the task started. Returns whether the status changed.
    ///
    /// A pass makes the task healthy and clears the streak. A failure while still starting, inside
    /// the start period, does not count (a slow start is not a sick task); any other failure adds
    /// to the streak, and `retries` in a row make it unhealthy.
    @discardableResult
    public mutating func record(_ probe: HealthProbe, retries: Int, inStartPeriod: Bool) -> Bool {
        let before = status
        log.append(probe)
        if log.count > Self.logLength { log.removeFirst(log.count - Self.logLength) }
        if probe.exitCode == 0 {
            failingStreak = 0
            hasPassed = true
            status = .healthy
        } else if !(status == .starting && inStartPeriod) {
            failingStreak += 1
            if failingStreak >= retries { status = .unhealthy }
        }
        return status != before
    }

    /// How long to wait before the next probe: the start interval while a start period runs and
    /// the task has not yet passed, the interval otherwise.
    public func nextDelay(_ check: HealthCheck, sinceStart: Duration) -> Duration {
        if status == .starting, sinceStart < check.startPeriod { return min(check.startInterval, check.interval) }
        return check.interval
    }

    /// Whether balancers may send it connections.
    public var isServing: Bool { status == .healthy }
}
