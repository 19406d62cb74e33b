import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The node's images under `<dataRoot>/images`: content-addressed blobs
/// (`blobs/sha256/<hex>`, 0600 in 0700 directories), one unpacked directory per layer stack
/// (`layers/<chainid hex>/`), and `index.json` mapping each pulled reference to its image.
/// Pulls of the same reference share one pull; so do downloads of the same blob and unpacks of
/// the same layer. Nothing is visible in the store until it is complete and checked: downloads and
/// unpacks happen under `tmp/` and are renamed into place.
public actor ImageStore {
    public nonisolated let root: String
    public nonisolated let client: RegistryClient
    var index: [String: Image]
    var pulls: [String: Task<Image, Error>] = [:]
    var blobFetches: [Digest: Task<Void, Error>] = [:]
    var unpacks: [Digest: Task<Void, Error>] = [:]
    public private(set) var statistics = Statistics()

    public struct Statistics: Sendable, Equatable {
        public var pulls = 0
        public var blobsDownloaded = 0
        public var bytesDownloaded: Int64 = 0
        public var layersUnpacked = 0
    }

    public enum StoreError: Error, Equatable, CustomStringConvertible {
        case io(op: String, path: String, reason: String)
        case diffIDMismatch(layer: Digest, expected: Digest, actual: Digest)
        case layerCountMismatch(manifest: Int, config: Int)
        case unpack(layer: Digest, reason: String)
        case badIndex(String)

        public var description: String {
            switch self {
            case .io(let op, let p, let r): "image store: \(op) \(p): \(r)"
            case .diffIDMismatch(let l, let e, let a): "layer \(l): uncompressed digest \(a) is not the config's diff_id \(e) (refused)"
            case .layerCountMismatch(let m, let c): "manifest has \(m) layers but the config lists \(c) diff_ids"
            case .unpack(let l, let r): "layer \(l): \(r)"
            case .badIndex(let r): "image store index: \(r)"
            }
        }
    }

    public var imagesDirectory: String { root + "/images" }
    nonisolated var blobsDirectory: String { root + "/images/blobs/sha256" }
    nonisolated var layersDirectory: String { root + "/images/layers" }
    nonisolated var tmpDirectory: String { root + "/images/tmp" }
    nonisolated var indexPath: String { root + "/images/index.json" }

    /// Opens (creating) the store under `dataRoot` and reads its index; leftovers of pulls that
    /// were interrupted are removed from `tmp/`.
    public init(dataRoot: String, client: RegistryClient) throws {
        root = dataRoot
        self.client = client
        for dir in [dataRoot + "/images", dataRoot + "/images/blobs", dataRoot + "/images/blobs/sha256", dataRoot + "/images/layers"] {
            try Self.makeDirectory(dir)
        }
        let tmp = dataRoot + "/images/tmp"
        if FileManager.default.fileExists(atPath: tmp) {
            try? LayerUnpacker(root: tmp, mode: .apply).remove(tmp)
        }
        try Self.makeDirectory(tmp)
        index = try Self.loadIndex(dataRoot + "/images/index.json")
    }

    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw StoreError.io(op: "mkdir", path: path, reason: String(cString: strerror(errno)))
        }
        _ = chmod(path, 0o700)
    }

    static func loadIndex(_ path: String) throws -> [String: Image] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        struct File: Decodable { var images: [String: Image] }
        do { return try JSONDecoder().decode(File.self, from: data).images } catch {
            throw StoreError.badIndex("\(path): \(ManifestDocument.describe(error))")
        }
    }

    // MARK: lookups

    /// The local image `reference` names, if it was pulled (and its layers are still there).
    public func image(_ reference: ImageReference) -> Image? {
        guard let image = index[reference.description] else { return nil }
        return image.layers.allSatisfy({ FileManager.default.fileExists(atPath: $0.path) }) ? image : nil
    }

    public func images() -> [Image] { index.values.sorted { $0.reference.description < $1.reference.description } }

    public nonisolated func blobPath(_ d: Digest) -> String { blobsDirectory + "/" + d.hex }

    // MARK: pull

    /// Pulls `reference` for `platform` (index → matching manifest → config → layers), checking
    /// every digest and diff_id, unpacking each layer once, and records it in the index.
    /// Concurrent pulls of one reference share the same work.
    public func pull(_ reference: ImageReference, platform: Platform = .linuxAMD64) async throws -> Image {
        let key = "\(reference) \(platform)"
        if let running = pulls[key] { return try await running.value }
        let task = Task { try await self.performPull(reference, platform: platform) }
        pulls[key] = task
        statistics.pulls += 1
        let result = await task.result
        pulls[key] = nil
        return try result.get()
    }

    nonisolated func performPull(_ reference: ImageReference, platform: Platform) async throws -> Image {
        let endpoints = client.endpoints(for: reference)
        var failures: [RegistryError.EndpointFailure] = []
        for endpoint in endpoints {
            do {
                try await client.check(endpoint)
                return try await pull(reference, platform: platform, from: endpoint)
            } catch let e as RegistryError {
                failures.append(.init(endpoint: endpoint.description, error: e))
                if !e.allowsFallback { throw e }
            }
        }
        throw RegistryError.summary(failures, endpoints: endpoints)
    }

    nonisolated func pull(_ reference: ImageReference, platform: Platform, from endpoint: RegistryEndpoint) async throws -> Image {
        let repo = reference.path
        let top = try await client.manifest(endpoint, repository: repo, reference: reference.manifestReference)
        var fetched = top
        var documents = [top]
        if case .index(let idx) = top.document {
            guard let chosen = idx.manifest(for: platform) else {
                throw RegistryError.noMatchingPlatform(
                    reference: reference.description, wanted: platform, available: idx.manifests.compactMap(\.platform))
            }
            fetched = try await client.manifest(endpoint, repository: repo, reference: chosen.digest.description)
            documents.append(fetched)
        }
        guard case .manifest(let manifest) = fetched.document else {
            throw RegistryError.badManifest("an index entry points to another index (\(fetched.digest))")
        }
        // The config first: it says what the layers must unpack to.
        let configData: Data
        if let local = FileManager.default.contents(atPath: blobPath(manifest.config.digest)),
            Digest(hashing: local) == manifest.config.digest
        {
            configData = local
        } else {
            configData = try await client.blobData(endpoint, repository: repo, manifest.config)
            try writeBlob(configData, digest: manifest.config.digest)
        }
        let configFile: ImageConfigFile
        do { configFile = try ImageConfigFile.decode(configData) } catch { throw RegistryError.badConfig(error.description) }
        guard configFile.platform.satisfies(platform) else {
            throw RegistryError.noMatchingPlatform(reference: reference.description, wanted: platform, available: [configFile.platform])
        }
        let diffIDs = configFile.rootfs.diffIDs
        guard diffIDs.count == manifest.layers.count else {
            throw StoreError.layerCountMismatch(manifest: manifest.layers.count, config: diffIDs.count)
        }
        for layer in manifest.layers where MediaType.layerCompression(layer.mediaType) == nil {
            throw RegistryError.unsupportedLayer(mediaType: layer.mediaType)
        }
        // Downloads in parallel, unpacks bottom-up (a hardlink may point into a lower layer).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for layer in manifest.layers {
                group.addTask { try await self.ensureBlob(layer, endpoint: endpoint, repository: repo) }
            }
            try await group.waitForAll()
        }
        let chainIDs = Digest.chainIDs(diffIDs)
        var layers: [Image.Layer] = []
        for (i, d) in manifest.layers.enumerated() {
            let path = layersDirectory + "/" + chainIDs[i].hex
            try await ensureLayer(d, diffID: diffIDs[i], chainID: chainIDs[i], lowerDirs: layers.reversed().map(\.path))
            layers.append(
                .init(digest: d.digest, mediaType: d.mediaType, size: d.size, diffID: diffIDs[i], chainID: chainIDs[i], path: path))
        }
        for doc in documents where !FileManager.default.fileExists(atPath: blobPath(doc.digest)) {
            try writeBlob(doc.body, digest: doc.digest)
        }
        let image = Image(
            reference: reference, repoDigest: top.digest, manifestDigest: fetched.digest, configDigest: manifest.config.digest,
            platform: configFile.platform, config: configFile.imageConfig, layers: layers)
        try await record(image)
        return image
    }

    // MARK: blobs

    func ensureBlob(_ d: Descriptor, endpoint: RegistryEndpoint, repository: String) async throws {
        if let running = blobFetches[d.digest] { return try await running.value }
        if Self.fileSize(blobPath(d.digest)) == d.size { return }
        let task = Task { try await self.download(d, endpoint: endpoint, repository: repository) }
        blobFetches[d.digest] = task
        let result = await task.result
        blobFetches[d.digest] = nil
        if case .success = result {
            statistics.blobsDownloaded += 1
            statistics.bytesDownloaded += d.size
        }
        try result.get()
    }

    nonisolated func download(_ d: Descriptor, endpoint: RegistryEndpoint, repository: String) async throws {
        let tmp = tmpDirectory + "/blob-\(d.digest.hex)-\(UInt32.random(in: 0...UInt32.max))"
        try await client.downloadBlob(endpoint, repository: repository, d, to: tmp)
        try rename(tmp, to: blobPath(d.digest))
    }

    nonisolated func writeBlob(_ data: Data, digest: Digest) throws {
        let tmp = tmpDirectory + "/blob-\(digest.hex)-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError.io(op: "create", path: tmp, reason: String(cString: strerror(errno))) }
        let n = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let failed = n != data.count || fsync(fd) != 0
        close(fd)
        if failed {
            unlink(tmp)
            throw StoreError.io(op: "write", path: tmp, reason: String(cString: strerror(errno)))
        }
        try rename(tmp, to: blobPath(digest))
    }

    nonisolated func rename(_ from: String, to: String) throws {
        if Glibc.rename(from, to) != 0 {
            let reason = String(cString: strerror(errno))
            try? LayerUnpacker(root: from, mode: .apply).remove(from)
            throw StoreError.io(op: "rename", path: "\(from) → \(to)", reason: reason)
        }
    }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    // MARK: layers

    func ensureLayer(_ d: Descriptor, diffID: Digest, chainID: Digest, lowerDirs: [String]) async throws {
        if let running = unpacks[chainID] { return try await running.value }
        let final = layersDirectory + "/" + chainID.hex
        if FileManager.default.fileExists(atPath: final) { return }
        let blob = blobPath(d.digest)
        let tmp = tmpDirectory + "/layer-\(chainID.hex)-\(UInt32.random(in: 0...UInt32.max))"
        let task = Task {
            try await Self.unpackOffPool(blob: blob, descriptor: d, diffID: diffID, into: tmp, final: final, lowerDirs: lowerDirs)
        }
        unpacks[chainID] = task
        let result = await task.result
        unpacks[chainID] = nil
        if case .success = result { statistics.layersUnpacked += 1 }
        try result.get()
    }

    /// Unpacking is seconds of blocking file I/O: it runs on a thread of its own, not on the
    /// cooperative pool the rest of the daemon shares.
    static func unpackOffPool(blob: String, descriptor: Descriptor, diffID: Digest, into tmp: String, final: String, lowerDirs: [String])
        async throws
    {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<Void, Error>) in
            let thread = Thread {
                do {
                    try unpackLayer(blob: blob, descriptor: descriptor, diffID: diffID, into: tmp, lowerDirs: lowerDirs)
                    if Glibc.rename(tmp, final) != 0 {
                        let e = errno
                        try? LayerUnpacker(root: tmp, mode: .apply).remove(tmp)
                        // Another store process won the race: its copy is as good as ours.
                        if e != EEXIST && e != ENOTEMPTY {
                            throw StoreError.io(op: "rename", path: "\(tmp) → \(final)", reason: String(cString: strerror(e)))
                        }
                    }
                    k.resume()
                } catch {
                    k.resume(throwing: error)
                }
            }
            thread.start()
        }
    }

    /// Unpacks one layer blob into `dir` (overlay form), checking its diff ID; on any failure
    /// the directory is removed.
    public static func unpackLayer(blob: String, descriptor: Descriptor, diffID: Digest, into dir: String, lowerDirs: [String]) throws {
        guard let compression = MediaType.layerCompression(descriptor.mediaType) else {
            throw RegistryError.unsupportedLayer(mediaType: descriptor.mediaType)
        }
        if mkdir(dir, 0o755) != 0 { throw StoreError.io(op: "mkdir", path: dir, reason: String(cString: strerror(errno))) }
        do {
            let source = try LayerSource(path: blob, compression: compression)
            let unpacker = LayerUnpacker(root: dir, mode: .overlay, lowerDirs: lowerDirs)
            do { try unpacker.unpack(TarReader(source)) } catch { throw StoreError.unpack(layer: descriptor.digest, reason: "\(error)") }
            let got = source.digest
            guard got == diffID else { throw StoreError.diffIDMismatch(layer: descriptor.digest, expected: diffID, actual: got) }
        } catch {
            try? LayerUnpacker(root: dir, mode: .apply).remove(dir)
            throw error
        }
    }

    // MARK: index

    func record(_ image: Image) throws {
        index[image.reference.description] = image
        // A pull by tag also makes the image reachable by its digest, as in Docker.
        index[image.reference.withDigest(image.repoDigest).description] = image
        try persistIndex()
    }

    /// Written whole (it is small) to a temporary file, then renamed: a crash leaves the old or the new.
    func persistIndex() throws {
        struct File: Encodable {
            var version = 1
            var images: [String: Image]
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data: Data
        do { data = try enc.encode(File(images: index)) } catch { throw StoreError.badIndex(String(describing: error)) }
        let tmp = indexPath + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw StoreError.io(op: "write", path: tmp, reason: "cannot create")
        }
        if Glibc.rename(tmp, indexPath) != 0 { throw StoreError.io(op: "rename", path: tmp, reason: String(cString: strerror(errno))) }
    }
}
