import ArgumentParser
import Foundation

/// Go's duration syntax (`300ms`, `2s`, `1m30s`, `1h`) as nanoseconds.
struct GoDuration: ExpressibleByArgument {
    var nanoseconds: Int64

    init?(argument: String) {
        guard let n = Self.parse(argument) else { return nil }
        nanoseconds = n
    }

    static func parse(_ text: String) -> Int64? {
        if text == "0" { return 0 }
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var rest = Substring(text)
        var total = 0.0
        guard !rest.isEmpty, rest.count <= 64 else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = units.filter({ rest.hasPrefix($0.0) }).max(by: { $0.0.count < $1.0.count }) else { return nil }
            rest = rest.dropFirst(unit.0.count)
            total += value * unit.1
        }
        guard total < 9e18 else { return nil }
        return Int64(total)
    }

    /// `5s`, `1m30s`, `200ms`, as `service inspect --pretty` prints them.
    static func format(_ ns: Int64) -> String {
        if ns == 0 { return "0s" }
        if ns < 1_000_000_000 { return "\(ns / 1_000_000)ms" }
        var s = ns / 1_000_000_000
        var out = ""
        if s >= 3600 {
            out += "\(s / 3600)h"
            s %= 3600
        }
        if s >= 60 || !out.isEmpty {
            out += "\(s / 60)m"
            s %= 60
        }
        return out + "\(s)s"
    }
}

/// "19 seconds ago", as `service ps` prints a task's state age (Go's units.HumanDuration).
func humanAgo(_ date: Date, now: Date = Date()) -> String {
    let s = Int(now.timeIntervalSince(date))
    switch s {
    case ..<1: return "Less than a second ago"
    case 1: return "1 second ago"
    case ..<60: return "\(s) seconds ago"
    case ..<120: return "About a minute ago"
    case ..<3600: return "\(s / 60) minutes ago"
    case ..<7200: return "About an hour ago"
    case ..<(48 * 3600): return "\(s / 3600) hours ago"
    default: return "\(s / 86400) days ago"
    }
}
