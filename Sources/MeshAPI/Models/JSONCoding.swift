import Foundation

/// Docker's JSON conventions: RFC 3339 times with fractional seconds and a zone, durations as
/// integer nanoseconds (plain Int64 fields), unknown fields ignored, absent fields zero.
public enum EngineJSON {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        // Go does not escape slashes; image names and CIDRs read better without.
        e.outputFormatting = [.withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(formatDate(date))
        }
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard let date = parseDate(text) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an RFC 3339 time: \(text.prefix(40))")
            }
            return date
        }
        return d
    }

    public static func formatDate(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// Go writes between 0 and 9 fractional digits; both forms parse.
    public static func parseDate(_ text: String) -> Date? {
        guard text.utf8.count <= 64 else { return nil }
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return d }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }
}

/// `Version` of every swarm object: the store's index, sent back on update as `?version=`.
public struct ObjectVersion: Codable, Sendable, Equatable, Hashable {
    public var Index: UInt64
    public init(_ index: UInt64) { Index = index }
}

/// Durations in Docker's JSON are integer nanoseconds.
public typealias Nanoseconds = Int64

public extension Int64 {
    static func seconds(_ s: Int64) -> Nanoseconds { s * 1_000_000_000 }
}
