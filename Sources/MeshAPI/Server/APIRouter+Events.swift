import Foundation
import NIOHTTP1

extension APIRouter {
    /// `GET /events?since=&until=&filters=` (`docker events`): newline-separated JSON messages, sent as
    /// they happen. dockerd reads no other parameter.
    func events(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let since = try EventTime.parse(r.query["since"], name: "since")
        let until = try EventTime.parse(r.query["until"], name: "until")
        if let since, let until, until < since {
            throw .invalidArgument(
                "`since` time (\(r.query["since"] ?? "")) cannot be after `until` time (\(r.query["until"] ?? ""))")
        }
        let filter = try EventFilter.parse(r.query["filters"])
        let source = try await backend.events(EventQuery(since: since, until: until, filter: filter))
        let lines = AsyncStream<[UInt8]> { continuation in
            let pump = Task {
                let encoder = EngineJSON.encoder()
                // Go's map encoding orders keys; clients do not care, but the same event reads the same.
                encoder.outputFormatting.insert(.sortedKeys)
                for await event in source {
                    guard var line = try? encoder.encode(event) else { continue }
                    line.append(0x0A)
                    continuation.yield(Array(line))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in pump.cancel() }
        }
        // API < 1.52 answers `application/json` although the body is JSON lines (dockerd 28 does).
        return APIResponse(status: .ok, body: .stream(contentType: "application/json", lines))
    }
}

/// `since`/`until` of `GET /events`: Unix seconds with an optional fraction (`1700000000.123456789`,
/// what the CLI sends after turning `10m` or an RFC 3339 time into one), as nanoseconds.
public enum EventTime {
    /// nil for an absent or empty value. Errors are dockerd's (API 1.52 and later: 400, where 28 answered 500).
    public static func parse(_ value: String?, name: String) throws(EngineError) -> Int64? {
        guard let value, !value.isEmpty else { return nil }
        func fail(_ why: String) -> EngineError {
            .invalidArgument("invalid value for '\(name)': invalid timestamp \"\(value)\": \(why)")
        }
        let parts = value.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let secondsText = String(parts[0])
        guard let seconds = Int64(secondsText) else {
            let digits = !secondsText.isEmpty && secondsText.drop { $0 == "-" || $0 == "+" }.allSatisfy(\.isASCIIDigit)
            throw fail("invalid seconds \"\(secondsText)\": \(digits ? "value out of range" : "invalid syntax")")
        }
        var nanos: Int64 = 0
        if parts.count == 2, !parts[1].isEmpty {
            let fraction = parts[1]
            guard fraction.count <= 20 else { throw fail("invalid nanoseconds: length \(fraction.count) exceeds maximum 20") }
            if let bad = fraction.firstIndex(where: { !$0.isASCIIDigit }) {
                throw fail(
                    "invalid nanoseconds: invalid character '\(fraction[bad])' at position \(fraction.distance(from: fraction.startIndex, to: bad))"
                )
            }
            // Nine digits: right-padded when shorter, truncated when longer.
            let nine = String((fraction + String(repeating: "0", count: 9)).prefix(9))
            nanos = Int64(nine) ?? 0
        }
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        // Go's `time.Unix(sec, nsec)` adds the fraction whatever the sign of the seconds.
        let (total, overflow2) = scaled.addingReportingOverflow(nanos)
        guard !overflow, !overflow2 else { throw fail("invalid seconds \"\(secondsText)\": value out of range") }
        return total
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
