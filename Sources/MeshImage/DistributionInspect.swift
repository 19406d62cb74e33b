/// What `GET /distribution/{name}/json` answers (Docker's registry.DistributionInspect): the
/// descriptor the reference resolves to and the platforms it offers, so `service create` can
/// pin the image by digest.
public struct DistributionInfo: Sendable, Equatable, Codable {
    public struct DescriptorJSON: Sendable, Equatable, Codable {
        public var mediaType: String
        public var digest: Digest
        public var size: Int64
    }
    public var Descriptor: DescriptorJSON
    public var Platforms: [Platform]
}

extension RegistryClient {
    /// Resolves `reference` on the first endpoint that has it (mirrors first for docker.io). An
    /// index gives its entries' platforms; a single manifest its config's platform.
    public func distributionInfo(_ reference: ImageReference) async throws(RegistryError) -> DistributionInfo {
        var failures: [RegistryError.EndpointFailure] = []
        let endpoints = endpoints(for: reference)
        for endpoint in endpoints {
            do {
                try await check(endpoint)
                return try await distributionInfo(reference, on: endpoint)
            } catch {
                failures.append(.init(endpoint: endpoint.description, error: error))
                if !error.allowsFallback { throw error }
            }
        }
        throw .summary(failures, endpoints: endpoints)
    }

    func distributionInfo(_ reference: ImageReference, on endpoint: RegistryEndpoint) async throws(RegistryError) -> DistributionInfo {
        let m = try await manifest(endpoint, repository: reference.path, reference: reference.manifestReference)
        let mediaType: String
        let platforms: [Platform]
        switch m.document {
        case .index(let idx):
            mediaType = idx.mediaType ?? m.contentType ?? MediaType.ociIndex
            platforms = idx.manifests.compactMap(\.platform).filter { $0.os != "unknown" }
        case .manifest(let man):
            mediaType = man.mediaType ?? m.contentType ?? MediaType.ociManifest
            let data = try await blobData(endpoint, repository: reference.path, man.config)
            do { platforms = [try ImageConfigFile.decode(data).platform] } catch { throw .badConfig(error.description) }
        }
        return DistributionInfo(
            Descriptor: .init(mediaType: mediaType, digest: m.digest, size: Int64(m.body.count)), Platforms: platforms)
    }
}
