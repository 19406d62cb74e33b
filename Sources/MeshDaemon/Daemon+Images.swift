import Foundation
import MeshAPI
import MeshImage
import MeshRuntime

/// The image endpoints, answered from the node's own image store and its registry options.
extension Daemon {
    /// `GET /distribution/{name}/json`: asked of the registry (mirrors first for docker.io), so
    /// `service create` pins the image by digest as it does against dockerd. An image this node's
    /// process catalog maps (whoami, busybox) is not a registry's: a 404 lets the CLI run it by name.
    public func distributionInspect(_ image: String) async throws(EngineError) -> DistributionInspect {
        if await isCatalogImage(image) { throw .notFound("no registry digest for \(image): it runs from this node's image catalog") }
        let ref = try Self.reference(image)
        let store = try imageStore()
        do {
            let info = try await store.client.distributionInfo(ref)
            return DistributionInspect(
                Descriptor: .init(
                    mediaType: info.Descriptor.mediaType, digest: info.Descriptor.digest.description, size: info.Descriptor.size),
                Platforms: info.Platforms.map { .init(architecture: $0.architecture, os: $0.os) })
        } catch {
            throw Self.registryError(error, ref)
        }
    }

    public func listImages() async throws(EngineError) -> [ImageSummary] {
        let store = try imageStore()
        let all = await store.images()
        // The store's index has an entry per name the image was pulled or pinned by; one summary per image.
        let byID = Dictionary(grouping: all, by: \.id)
        return byID.keys.sorted().compactMap { id in
            guard let images = byID[id], let first = images.first else { return nil }
            let names = Self.names(images)
            return ImageSummary(
                Id: id, RepoTags: names.tags, RepoDigests: names.digests,
                Created: Self.created(first, store).map { Int64($0.timeIntervalSince1970) } ?? 0,
                Size: first.size, Labels: first.config.labels)
        }
    }

    public func inspectImage(_ ref: String) async throws(EngineError) -> ImageInspect {
        let store = try imageStore()
        let all = await store.images()
        var found: Image?
        if let parsed = try? ImageReference(parsing: ref) {
            found = await store.image(parsed.digest.map(parsed.withDigest) ?? parsed)
        }
        if found == nil {
            // An ID (`sha256:…`) or a prefix of its hex, as dockerd resolves them.
            let hex = ref.hasPrefix("sha256:") ? String(ref.dropFirst(7)) : ref
            let matches = Set(all.filter { hex.count >= 4 && $0.configDigest.hex.hasPrefix(hex) }.map(\.id))
            if matches.count > 1 { throw .invalidArgument("multiple IDs found with provided prefix: \(ref)") }
            found = all.first { matches.contains($0.id) }
        }
        guard let image = found else { throw .notFound("No such image: \(ref)") }
        let names = Self.names(all.filter { $0.id == image.id })
        let c = image.config
        let created = Self.created(image, store).map { Date.ISO8601FormatStyle(includingFractionalSeconds: false).format($0) } ?? ""
        return ImageInspect(
            Id: image.id, RepoTags: names.tags, RepoDigests: names.digests, Created: created,
            Architecture: image.platform.architecture, Os: image.platform.os, Variant: image.platform.variant, Size: image.size,
            Config: .init(
                Entrypoint: c.entrypoint, Cmd: c.cmd, Env: c.env, WorkingDir: c.workingDir, User: c.user, ExposedPorts: c.exposedPorts,
                Volumes: c.volumes, StopSignal: c.stopSignal, Labels: c.labels),
            RootFS: .init(Layers: image.layers.map(\.diffID.description)))
    }

    public func pullImage(_ reference: String) async throws(EngineError) -> ImagePullResult {
        let ref = try Self.reference(reference)
        let store = try imageStore()
        let before = await store.image(ref)?.manifestDigest
        let image: Image
        do { image = try await store.pull(ref) } catch { throw Self.registryError(error, ref) }
        let repository =
            ref.domain == ImageReference.defaultDomain && ref.path.hasPrefix("library/") ? String(ref.path.dropFirst(8)) : ref.path
        return ImagePullResult(
            reference: ref.familiar, tag: ref.tag ?? ref.digest?.description ?? "latest", repository: repository,
            digest: image.repoDigest.description, downloaded: before != image.manifestDigest)
    }

    // MARK: helpers

    /// The node's image store, or why it cannot be opened.
    func imageStore() throws(EngineError) -> ImageStore {
        do { return try nodeImages().store } catch { throw .internalError("image store: \(error)") }
    }

    /// The node's catalog as its runtime read it; read from the data root only outside a swarm.
    func isCatalogImage(_ image: String) async -> Bool {
        let known = await node?.runtime.catalog
        guard let catalog = known ?? (try? ImageCatalog(dataRoot: options.dataRoot, meshd: options.meshd, builtins: options.builtinImages))
        else { return false }
        return (try? catalog.command(image: image, args: [])) != nil
    }

    static func reference(_ text: String) throws(EngineError) -> ImageReference {
        do { return try ImageReference(parsing: text) } catch { throw .invalidArgument("invalid reference format: \(error.description)") }
    }

    /// Tags as dockerd prints them (`redis:7`, `127.0.0.1:5000/a:b`) and `name@digest`s.
    static func names(_ images: [Image]) -> (tags: [String], digests: [String]) {
        var tags = Set<String>(), digests = Set<String>()
        for i in images {
            let r = i.reference
            if r.tag != nil && r.digest == nil { tags.insert(r.withTag(r.tag!).familiar) }
            digests.insert(r.withDigest(i.repoDigest).familiar)
        }
        return (tags.sorted(), digests.sorted())
    }

    /// The config blob's `created`, as the image's builder wrote it.
    static func created(_ image: Image, _ store: ImageStore) -> Date? {
        struct Created: Decodable { var created: String? }
        guard let data = FileManager.default.contents(atPath: store.blobPath(image.configDigest)),
            let text = (try? JSONDecoder().decode(Created.self, from: data))?.created
        else { return nil }
        return (try? Date(text, strategy: .iso8601)) ?? (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
    }

    /// Registry failures as dockerd reports them: what the registry does not have is a 404, an
    /// unreachable registry a 500 naming it; each with the registry's own words.
    static func registryError(_ error: any Error, _ ref: ImageReference) -> EngineError {
        let text = "\(error)"
        var cause = error as? RegistryError
        // Mirrors, then the registry: the status is the last place's answer (as dockerd's), the text all of them.
        if case .allEndpointsFailed(let failures)? = cause { cause = failures.last?.error }
        switch cause {
        case .manifestUnknown?: return .notFound("manifest for \(ref.familiar) not found: \(text)")
        case .nameUnknown?, .unauthorized?:
            return .notFound("pull access denied for \(ref.familiar), repository does not exist or may require authorization: \(text)")
        default: return .internalError("\(ref.familiar): \(text)")
        }
    }
}
