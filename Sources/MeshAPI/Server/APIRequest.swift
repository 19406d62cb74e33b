import Foundation
import NIOHTTP1

/// One decoded request: the path without its `/v1.xx` prefix, the query as a dictionary (the last
/// value wins, as Go's `r.Form.Get` gives the first; the CLI never repeats a key) and the body.
public struct APIRequest: Sendable {
    public var method: HTTPMethod
    /// Percent-decoded path segments after the version prefix, e.g. ["services", "web", "update"].
    public var segments: [String]
    public var apiVersion: String?
    public var query: [String: String]
    public var contentType: String?
    public var body: [UInt8]
    /// `X-Registry-Auth` as sent (base64url JSON of the client's registry credentials).
    public var registryAuth: String?

    /// Splits `uri` into version, segments and query. Throws 400 for a version outside 1.24…1.50.
    public init(method: HTTPMethod, uri: String, contentType: String?, body: [UInt8]) throws(EngineError) {
        self.method = method
        self.contentType = contentType
        self.body = body
        let pathPart: Substring
        let queryPart: Substring?
        if let q = uri.firstIndex(of: "?") {
            pathPart = uri[..<q]
            queryPart = uri[uri.index(after: q)...]
        } else {
            pathPart = Substring(uri)
            queryPart = nil
        }
        var segs = pathPart.split(separator: "/", omittingEmptySubsequences: true).map { Self.percentDecode(String($0)) }
        if let first = segs.first, first.hasPrefix("v"), let version = APIVersion(String(first.dropFirst())) {
            guard version <= APIVersion.current else {
                throw .invalidArgument("client version \(version) is too new. Maximum supported API version is \(APIVersion.current)")
            }
            guard version >= APIVersion.minimum else {
                throw .invalidArgument(
                    "client version \(version) is too old. Minimum supported API version is \(APIVersion.minimum), please upgrade your client to a newer version"
                )
            }
            apiVersion = version.description
            segs.removeFirst()
        }
        segments = segs
        var q: [String: String] = [:]
        if let queryPart {
            for pair in queryPart.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = Self.percentDecode(String(kv[0]), plusIsSpace: true)
                let value = kv.count > 1 ? Self.percentDecode(String(kv[1]), plusIsSpace: true) : ""
                if !key.isEmpty { q[key] = value }
            }
        }
        query = q
    }

    static func percentDecode(_ s: String, plusIsSpace: Bool = false) -> String {
        let t = plusIsSpace ? s.replacingOccurrences(of: "+", with: " ") : s
        return t.removingPercentEncoding ?? t
    }

    /// moby's `httputils.BoolValue`: anything but "", "0", "no", "false", "none" is true.
    public func bool(_ key: String) -> Bool {
        guard let v = query[key]?.trimmingCharacters(in: .whitespaces).lowercased() else { return false }
        return !["", "0", "no", "false", "none"].contains(v)
    }

    /// `?version=N` of the optimistic updates; `kind` names the object in the error.
    public func objectVersion(kind: String) throws(EngineError) -> UInt64 {
        let raw = query["version"] ?? ""
        guard let v = UInt64(raw) else {
            throw .invalidArgument("invalid \(kind) version '\(raw)': strconv.ParseUint: parsing \"\(raw)\": invalid syntax")
        }
        return v
    }

    /// The body as `T`. Empty bodies, other content types, bad JSON and wrong types are 400s.
    public func decode<T: Decodable>(_ type: T.Type) throws(EngineError) -> T {
        if let ct = contentType, !ct.isEmpty {
            let media = ct.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            guard media == "application/json" else {
                throw .invalidArgument("unsupported Content-Type header (\(ct)): must be 'application/json'")
            }
        }
        guard !body.isEmpty else { throw .invalidArgument("invalid JSON: request body is empty") }
        do {
            // Keys in any case, as dockerd reads them (FoldingDecoder.swift).
            return try EngineJSON.decodeRequest(T.self, from: Data(body))
        } catch let e as DecodingError {
            throw .invalidArgument("invalid JSON: \(Self.describe(e))")
        } catch {
            throw .invalidArgument("invalid JSON: \(error)")
        }
    }

    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String {
            let p = c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "the body" : p
        }
        switch e {
        case .typeMismatch(let t, let ctx): return "\(path(ctx.codingPath)) must be of type \(jsonName(t))"
        case .valueNotFound(let t, let ctx): return "\(path(ctx.codingPath)) must be of type \(jsonName(t)), not null"
        case .keyNotFound(let k, let ctx): return "\(path(ctx.codingPath + [k])) is required"
        case .dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "the body is not valid JSON" : "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "cannot decode the body"
        }
    }

    static func jsonName(_ t: Any.Type) -> String {
        switch t {
        case is String.Type: "string"
        case is Bool.Type: "boolean"
        case is Int.Type, is Int64.Type, is UInt64.Type, is UInt32.Type, is Double.Type: "number"
        default: String(describing: t).hasPrefix("Array") ? "array" : "object"
        }
    }
}

/// `major.minor` of the `/v1.xx` prefix.
public struct APIVersion: Comparable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    public static let current = APIVersion(major: 1, minor: 50)
    public static let minimum = APIVersion(major: 1, minor: 24)

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.count <= 4 && $0.allSatisfy(\.isNumber) }),
            let a = Int(parts[0]), let b = Int(parts[1])
        else { return nil }
        major = a
        minor = b
    }

    public var description: String { "\(major).\(minor)" }
    public static func < (l: APIVersion, r: APIVersion) -> Bool { (l.major, l.minor) < (r.major, r.minor) }
}

extension APIRequest {
    /// meshd pulls anonymously: credentials a client sent for a pull are refused by name, never
    /// dropped (a private image would fail later as "not found"). `{}` (what the CLI sends when
    /// not logged in) and an absent header are fine.
    public func refuseRegistryCredentials() throws(EngineError) {
        guard var text = registryAuth?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return }
        text = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw .invalidArgument("X-Registry-Auth: not base64url-encoded JSON") }
        let given = ["username", "password", "auth", "identitytoken", "registrytoken"].filter { key in
            object.contains { $0.key.lowercased() == key && !(($0.value as? String) ?? "").isEmpty }
        }
        if !given.isEmpty {
            throw .invalidArgument(
                "X-Registry-Auth: meshd pulls without registry credentials (got \(given.joined(separator: ", "))); use a registry or mirror that allows anonymous pulls"
            )
        }
    }
}
