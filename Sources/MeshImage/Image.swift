/// A pulled image: what the task driver needs to make a rootfs and a process from it.
public struct Image: Sendable, Equatable, Codable {
    public struct Layer: Sendable, Equatable, Codable {
        /// The blob's digest (compressed, as the registry names it).
        public var digest: Digest
        public var mediaType: String
        public var size: Int64
        /// sha256 of the uncompressed tar (the config's rootfs.diff_ids entry).
        public var diffID: Digest
        /// Names this layer with everything below it; its unpacked directory is named by it.
        public var chainID: Digest
        public var path: String
    }

    /// The reference it was pulled by, normalised (`docker.io/library/busybox:latest`).
    public var reference: ImageReference
    /// What the tag resolved to (the index for a multi-platform image): Docker's RepoDigest.
    public var repoDigest: Digest
    public var manifestDigest: Digest
    /// The config blob's digest: Docker's image ID.
    public var configDigest: Digest
    public var platform: Platform
    public var config: ImageConfig
    /// Bottom layer first.
    public var layers: [Layer]

    public var id: String { configDigest.description }
    /// The layers as overlayfs wants them: top first.
    public var lowerDirs: [String] { layers.reversed().map(\.path) }
    public var size: Int64 { layers.reduce(0) { $0 + $1.size } }
}

extension ImageReference: Codable {
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
}

extension Platform {
    /// Whether an image made for `self` runs where `wanted` is asked for.
    func satisfies(_ wanted: Platform) -> Bool {
        guard os == wanted.os, architecture == wanted.architecture else { return false }
        if let w = wanted.variant, let v = variant { return w == v }
        return true
    }
}
