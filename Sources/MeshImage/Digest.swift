import Crypto
import Foundation

/// A content digest, `sha256:<64 lowercase hex>`: the name of every blob, manifest and layer.
/// Only sha256 is accepted: it is what registries and Docker produce, and the store lays blobs
/// out under `blobs/sha256/`.
public struct Digest: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let hex: String
    public var algorithm: String { "sha256" }
    public var description: String { "sha256:\(hex)" }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case missingAlgorithm(String)
        case unsupportedAlgorithm(String)
        case badHex(String)
        public var description: String {
            switch self {
            case .missingAlgorithm(let s): "invalid digest format: \"\(s)\" has no algorithm (expected sha256:<hex>)"
            case .unsupportedAlgorithm(let a): "unsupported digest algorithm: \(a)"
            case .badHex(let s): "invalid checksum digest format: \"\(s)\" (sha256 needs 64 lowercase hex digits)"
            }
        }
    }

    public init(parsing s: String) throws(ParseError) {
        guard let colon = s.firstIndex(of: ":"), colon != s.startIndex else { throw .missingAlgorithm(s) }
        let alg = s[..<colon]
        let hex = s[s.index(after: colon)...]
        // The algorithm grammar of the OCI image spec; anything that fits but is not sha256 is unsupported.
        guard alg.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+._-".contains($0)) }) else {
            throw .missingAlgorithm(s)
        }
        guard alg == "sha256" else { throw .unsupportedAlgorithm(String(alg)) }
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw .badHex(s)
        }
        self.hex = String(hex)
    }

    public init(hashing data: some DataProtocol) {
        hex = Self.hexString(SHA256.hash(data: data))
    }

    init(_ hash: SHA256.Digest) { hex = Self.hexString(hash) }

    static func hexString(_ hash: SHA256.Digest) -> String {
        var s = ""
        s.reserveCapacity(64)
        for b in hash {
            let h = String(b, radix: 16)
            if h.count == 1 { s += "0" }
            s += h
        }
        return s
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        do { try self.init(parsing: s) } catch {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: error.description)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public static func < (a: Digest, b: Digest) -> Bool { a.hex < b.hex }

    /// The chain ID of a layer stack (OCI image spec): the first layer's diff ID, then
    /// sha256("<parent chain ID> <diff ID>") for each layer on top.
    public static func chainIDs(_ diffIDs: [Digest]) -> [Digest] {
        var out: [Digest] = []
        for d in diffIDs {
            if let parent = out.last {
                out.append(Digest(hashing: Data("\(parent) \(d)".utf8)))
            } else {
                out.append(d)
            }
        }
        return out
    }
}
