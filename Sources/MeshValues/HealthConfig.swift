/// A health check as Docker's HealthConfig gives it, wherever it comes from (a service, an image's
/// HEALTHCHECK): zeros mean "not set" (dockerd's defaults once nothing sets them). `test`:
/// `["CMD", arg…]`, `["CMD-SHELL", command]`, `["NONE"]` (no check) or empty (the image's).
public struct HealthConfig: Sendable, Equatable, Codable {
    public var test: [String]
    public var intervalNanos: Int64
    public var timeoutNanos: Int64
    public var startPeriodNanos: Int64
    public var startIntervalNanos: Int64
    public var retries: Int64

    public init(
        test: [String], intervalNanos: Int64 = 0, timeoutNanos: Int64 = 0, startPeriodNanos: Int64 = 0, startIntervalNanos: Int64 = 0,
        retries: Int64 = 0
    ) {
        self.test = test
        self.intervalNanos = intervalNanos
        self.timeoutNanos = timeoutNanos
        self.startPeriodNanos = startPeriodNanos
        self.startIntervalNanos = startIntervalNanos
        self.retries = retries
    }

    /// dockerd's merge of a container's check over its image's: an empty test takes the image's,
    /// and each field left at zero the image's value.
    public func filled(from image: HealthConfig) -> HealthConfig {
        var h = self
        if h.test.isEmpty { h.test = image.test }
        if h.intervalNanos == 0 { h.intervalNanos = image.intervalNanos }
        if h.timeoutNanos == 0 { h.timeoutNanos = image.timeoutNanos }
        if h.startPeriodNanos == 0 { h.startPeriodNanos = image.startPeriodNanos }
        if h.startIntervalNanos == 0 { h.startIntervalNanos = image.startIntervalNanos }
        if h.retries == 0 { h.retries = image.retries }
        return h
    }
}
