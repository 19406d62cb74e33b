import Foundation

/// The media types of the OCI image spec and Docker's schema 2, which registries still serve.
public enum MediaType {
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    public static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    public static let ociLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    public static let dockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    /// Schema 1 is signed JSON without a config blob; Docker dropped it and so do we.
    public static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

    /// Everything a manifest GET accepts, indexes first (Docker sends the same set).
    public static let manifestAccept = [ociIndex, dockerManifestList, ociManifest, dockerManifest]

    static func isIndex(_ t: String) -> Bool { t == ociIndex || t == dockerManifestList }
    static func isManifest(_ t: String) -> Bool { t == ociManifest || t == dockerManifest }

    /// How a layer blob is compressed, from its media type.
    public enum Compression: Sendable { case none, gzip }
    static func layerCompression(_ t: String) -> Compression? {
        switch t {
        case ociLayer, "application/vnd.oci.image.layer.nondistributable.v1.tar": Compression.none
        case ociLayerGzip, dockerLayerGzip, dockerForeignLayerGzip, ociLayerNondistributableGzip: .gzip
        default: nil
        }
    }
}

public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
    }

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }

    public var description: String { [os, architecture, variant].compactMap { $0 }.joined(separator: "/") }

    /// What this node runs: the task driver only runs linux/amd64 today.
    public static let linuxAMD64 = Platform(architecture: "amd64", os: "linux")
}

public struct Descriptor: Codable, Hashable, Sendable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var platform: Platform?
    public var annotations: [String: String]?
    public var urls: [String]?

    public init(mediaType: String, digest: Digest, size: Int64, platform: Platform? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.platform = platform
    }
}

/// An OCI image manifest or a Docker schema 2 manifest (same shape).
public struct ImageManifest: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var config: Descriptor
    public var layers: [Descriptor]
    public var annotations: [String: String]?

    public init(mediaType: String = MediaType.ociManifest, config: Descriptor, layers: [Descriptor]) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.config = config
        self.layers = layers
    }
}

/// An OCI image index or a Docker manifest list.
public struct ImageIndex: Codable, Sendable, Equatable {
    public var schemaVersion: Int
    public var mediaType: String?
    public var manifests: [Descriptor]
    public var annotations: [String: String]?

    public init(mediaType: String = MediaType.ociIndex, manifests: [Descriptor]) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.manifests = manifests
    }

    /// The manifest for `platform`, as containerd's default matcher picks it: os and architecture
    /// must match; a wanted variant must match when the entry has one; among the rest, the first
    /// entry wins (indexes list their preferred entry first). Attestation manifests (BuildKit's
    /// `unknown/unknown`) never match.
    public func manifest(for platform: Platform) -> Descriptor? {
        let candidates = manifests.filter { d in
            guard let p = d.platform, p.os == platform.os, p.architecture == platform.architecture else { return false }
            if let want = platform.variant, let have = p.variant { return want == have }
            return MediaType.isManifest(d.mediaType) || MediaType.isIndex(d.mediaType)
        }
        return candidates.first
    }
}

/// What a manifest endpoint returned, decoded by its media type.
public enum ManifestDocument: Sendable, Equatable {
    case index(ImageIndex)
    case manifest(ImageManifest)

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case notJSON(String)
        case unsupportedMediaType(String)
        case malformed(mediaType: String, reason: String)
        public var description: String {
            switch self {
            case .notJSON(let r): "manifest is not a JSON object: \(r)"
            case .unsupportedMediaType(let t):
                t.contains("v1+")
                    ? "unsupported manifest media type \(t) (Docker image schema 1 is not supported)"
                    : "unsupported manifest media type \"\(t)\""
            case .malformed(let t, let r): "malformed \(t): \(r)"
            }
        }
    }

    /// Decodes `body`; the media type comes from the document's own `mediaType` field when it has
    /// one, else from the response's Content-Type (OCI documents may omit the field).
    public static func decode(_ body: Data, contentType: String?) throws(DecodeError) -> ManifestDocument {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: body) } catch { throw .notJSON(String(describing: error)) }
        guard let dict = object as? [String: Any] else { throw .notJSON("top level is not an object") }
        var type = dict["mediaType"] as? String
        if type == nil, let ct = contentType {
            type = ct.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        if type == nil || type == "application/json" {
            // An OCI document without a mediaType anywhere: tell them apart by shape.
            type = dict["manifests"] != nil ? MediaType.ociIndex : dict["config"] != nil ? MediaType.ociManifest : type
        }
        guard let type else { throw .unsupportedMediaType("none") }
        do {
            if MediaType.isIndex(type) {
                let index = try JSONDecoder().decode(ImageIndex.self, from: body)
                guard index.schemaVersion == 2 else {
                    throw DecodeError.malformed(mediaType: type, reason: "schemaVersion \(index.schemaVersion)")
                }
                return .index(index)
            }
            if MediaType.isManifest(type) {
                let m = try JSONDecoder().decode(ImageManifest.self, from: body)
                guard m.schemaVersion == 2 else { throw DecodeError.malformed(mediaType: type, reason: "schemaVersion \(m.schemaVersion)") }
                return .manifest(m)
            }
        } catch let e as DecodeError {
            throw e
        } catch {
            throw .malformed(mediaType: type, reason: Self.describe(error))
        }
        throw .unsupportedMediaType(type)
    }

    /// DecodingError's description is long and unstable; say which key and why.
    static func describe(_ error: Error) -> String {
        guard let e = error as? DecodingError else { return String(describing: error) }
        func path(_ c: DecodingError.Context) -> String {
            c.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch e {
        case .keyNotFound(let k, let c): return "missing \(path(c).isEmpty ? "" : path(c) + ".")\(k.stringValue)"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return "\(path(c).isEmpty ? "document" : path(c)): \(c.debugDescription)"
        @unknown default: return String(describing: e)
        }
    }
}
