import AsyncHTTPClient
import Foundation
import MeshTestbed
import NIOHTTP1
import Testing

@testable import MeshImage

#if canImport(Glibc)
    import Glibc
#endif

/// A port on 127.0.0.1 with nothing listening (bound, then closed).
func deadPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    for _ in 0..<20 {
        let port = Int.random(in: 20000..<32000)
        addr.sin_port = UInt16(port).bigEndian
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if ok == 0 { return port }
    }
    return 1
}

/// Options every test uses: short timeouts, and Docker Hub replaced by a dead local port so a
/// docker.io reference can never reach out of the machine.
func testOptions(mirrors: [String] = [], requestTimeout: Duration = .seconds(5)) -> RegistryOptions {
    RegistryOptions(
        mirrors: mirrors, connectTimeout: .seconds(2), requestTimeout: requestTimeout, idleTimeout: .seconds(5),
        dockerHub: "http://127.0.0.1:\(deadPort())")
}

@discardableResult
func withStore<T>(_ options: RegistryOptions = testOptions(), root: String? = nil, _ body: (ImageStore, String) async throws -> T)
    async throws -> T
{
    let dir = try TempDir()
    let client = RegistryClient(options: options)
    do {
        let store = try ImageStore(dataRoot: root ?? dir.path, client: client)
        let r = try await body(store, root ?? dir.path)
        try await client.shutdown()
        return r
    } catch {
        try? await client.shutdown()
        throw error
    }
}

@discardableResult
func withRegistry<T>(_ body: (LocalRegistry) async throws -> T) async throws -> T {
    let registry = try await LocalRegistry.start(tag: "meshimage-registry")
    do {
        let r = try await body(registry)
        registry.stop()
        return r
    } catch {
        registry.stop()
        throw error
    }
}

func mode(_ path: String) -> UInt32 { UInt32(lstatOf(path)?.st_mode ?? 0) & 0o7777 }

@Suite(.serialized) struct RegistryTests {
    @Test func pullByTagAndByDigest() async throws {
        try await withRegistry { registry in
            let pushed = try await Pusher.push(
                TestImage(layers: [try busyboxLayer()]), to: registry.address, repo: "meshd/busybox", tag: "1.35")
            let ref = try ImageReference(parsing: "\(registry.address)/meshd/busybox:1.35")
            try await withStore { store, root in
                let image = try await store.pull(ref)
                #expect(image.repoDigest == pushed && image.manifestDigest == pushed)
                #expect(image.config.cmd == ["sh"] && image.config.stopSignal == "SIGQUIT" && image.config.exposedPorts == ["80/tcp"])
                #expect(image.layers.count == 1)
                let layer = image.layers[0].path
                #expect(layer == "\(root)/images/layers/\(image.layers[0].chainID.hex)")
                #expect(mode(layer + "/bin/busybox") == 0o755)
                #expect(try LayerUnpacker.readLink(layer + "/bin/sh") == "busybox")
                #expect(mode(layer + "/tmp") == 0o1777)
                // Blobs 0600 in 0700 directories, named by digest.
                let blob = store.blobPath(image.layers[0].digest)
                #expect(blob == "\(root)/images/blobs/sha256/\(image.layers[0].digest.hex)")
                #expect(mode(blob) == 0o600 && mode(root + "/images/blobs/sha256") == 0o700 && mode(root + "/images") == 0o700)
                #expect(mode(store.blobPath(image.configDigest)) == 0o600)
                #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/tmp").isEmpty)

                // By digest: same image, nothing downloaded again.
                let before = await store.statistics
                let byDigest = try await store.pull(ref.withDigest(pushed))
                #expect(byDigest.configDigest == image.configDigest)
                #expect(await store.statistics.blobsDownloaded == before.blobsDownloaded)
                #expect(await store.statistics.layersUnpacked == before.layersUnpacked)

                // The tag → image index survives a restart.
                let reopened = try ImageStore(dataRoot: root, client: store.client)
                #expect(await reopened.image(ref) == image)
                #expect(await reopened.image(ref.withDigest(pushed))?.configDigest == image.configDigest)
                #expect(await reopened.image(try ImageReference(parsing: "\(registry.address)/meshd/busybox:other")) == nil)
            }
        }
    }

    /// The busybox pull from a local registry into a fresh store, timed (reported by the run).
    @Test func pullTiming() async throws {
        try await withRegistry { registry in
            try await Pusher.push(TestImage(layers: [try busyboxLayer()]), to: registry.address, repo: "meshd/busybox", tag: "t")
            let ref = try ImageReference(parsing: "\(registry.address)/meshd/busybox:t")
            var times: [Double] = []
            for _ in 0..<11 {
                try await withStore { store, _ in
                    let start = ContinuousClock.now
                    _ = try await store.pull(ref)
                    let d = ContinuousClock.now - start
                    times.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
                }
            }
            times.sort()
            print(
                "pull-timing: busybox (1 layer, \(try busyboxLayer().count) bytes tar) from \(registry.address): median \(times[times.count / 2]) ms, min \(times[0]) ms, max \(times[times.count - 1]) ms, N=\(times.count)"
            )
            #expect(times[times.count / 2] < 5000)
        }
    }

    @Test func unknownTagAndRepository() async throws {
        try await withRegistry { registry in
            try await Pusher.push(TestImage(layers: [try busyboxLayer()]), to: registry.address, repo: "meshd/busybox", tag: "1.35")
            try await withStore { store, _ in
                let missingTag = try ImageReference(parsing: "\(registry.address)/meshd/busybox:nope")
                await #expect(throws: RegistryError.manifestUnknown(reference: "meshd/busybox:nope", registry: registry.address)) {
                    try await store.pull(missingTag)
                }
                let missingRepo = try ImageReference(parsing: "\(registry.address)/meshd/none:1")
                do {
                    _ = try await store.pull(missingRepo)
                    Issue.record("pulled a repository that does not exist")
                } catch let e as RegistryError {
                    // docker-registry answers NAME_UNKNOWN or MANIFEST_UNKNOWN depending on version.
                    #expect(
                        e == .nameUnknown(repository: "meshd/none", registry: registry.address)
                            || e == .manifestUnknown(reference: "meshd/none:1", registry: registry.address))
                    #expect(e.description.contains(registry.address))
                }
            }
        }
    }

    /// A blob whose bytes were changed in the registry's storage is refused and leaves nothing.
    @Test func corruptBlobRefused() async throws {
        try await withRegistry { registry in
            let image = TestImage(layers: [try busyboxLayer()])
            try await Pusher.push(image, to: registry.address, repo: "meshd/bad", tag: "1")
            let layer = try image.build().layers[0].descriptor
            let path = registry.blobDataPath(hex: layer.digest.hex)
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count / 2] ^= 0xff
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            try await withStore { store, root in
                let ref = try ImageReference(parsing: "\(registry.address)/meshd/bad:1")
                do {
                    _ = try await store.pull(ref)
                    Issue.record("a corrupt blob was accepted")
                } catch let e as RegistryError {
                    guard case .digestMismatch(_, let expected, let actual) = e else { throw e }
                    #expect(expected == layer.digest && actual == Digest(hashing: bytes))
                }
                #expect(!FileManager.default.fileExists(atPath: store.blobPath(layer.digest)))
                #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/tmp").isEmpty)
                #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/layers").isEmpty)
                #expect(await store.image(ref) == nil)
            }
        }
    }

    @Test func deadRegistryFailsFast() async throws {
        let port = deadPort()
        try await withStore { store, _ in
            let start = ContinuousClock.now
            let ref = try ImageReference(parsing: "127.0.0.1:\(port)/a/b:c")
            do {
                _ = try await store.pull(ref)
                Issue.record("pulled from nothing")
            } catch let e as RegistryError {
                guard case .unreachable(let address, _) = e else { throw e }
                #expect(address == "127.0.0.1:\(port)")
            }
            #expect(ContinuousClock.now - start < .seconds(3))
        }
    }

    /// A registry that accepts connections and never answers: a timeout, after the request timeout.
    @Test func silentRegistryTimesOut() async throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var port = 0
        for _ in 0..<20 {
            port = Int.random(in: 20000..<32000)
            addr.sin_port = UInt16(port).bigEndian
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if ok == 0 { break }
        }
        #expect(listen(fd, 16) == 0)  // the kernel completes handshakes; nobody reads
        try await withStore(testOptions(requestTimeout: .seconds(1))) { store, _ in
            let start = ContinuousClock.now
            let ref = try ImageReference(parsing: "127.0.0.1:\(port)/a/b:c")
            do {
                _ = try await store.pull(ref)
                Issue.record("pulled from a silent server")
            } catch let e as RegistryError {
                // HTTPS first (insecure registry): its handshake times out too, then HTTP.
                guard case .timeout(let address, let after) = e else { throw e }
                #expect(address == "127.0.0.1:\(port)" && after == .seconds(1))
            }
            #expect(ContinuousClock.now - start < .seconds(6))
        }
    }

    @Test func concurrentPullsShareOneDownload() async throws {
        try await withRegistry { registry in
            var extra = TarBuilder()
            extra.file("etc/motd", String(repeating: "hello\n", count: 20000))
            try await Pusher.push(
                TestImage(layers: [try busyboxLayer(), extra.finished()]), to: registry.address, repo: "meshd/two", tag: "1")
            let ref = try ImageReference(parsing: "\(registry.address)/meshd/two:1")
            try await withStore { store, _ in
                let images = try await withThrowingTaskGroup(of: Image.self) { group in
                    for _ in 0..<6 { group.addTask { try await store.pull(ref) } }
                    var out: [Image] = []
                    for try await i in group { out.append(i) }
                    return out
                }
                #expect(images.count == 6 && Set(images.map(\.configDigest)).count == 1)
                let s = await store.statistics
                #expect(s.pulls == 1)
                #expect(s.blobsDownloaded == 2)
                #expect(s.layersUnpacked == 2)
            }
        }
    }

    /// Three layers with a whiteout and an opaque directory, pulled and mounted as a container's
    /// rootfs: the merged view is what Docker would show, and the image's busybox runs in it.
    @Test(.enabled(if: geteuid() == 0)) func layeredImageOverlayRootfs() async throws {
        try await withRegistry { registry in
            var l2 = TarBuilder()
            l2.file("etc/config", "v1")
            l2.file("etc/remove-me", "x")
            l2.file("srv/a", "a")
            l2.file("srv/b", "b")
            var l3 = TarBuilder()
            l3.file("etc/config", "v2")
            l3.whiteout("etc/remove-me")
            l3.dir("srv")
            l3.opaque("srv")
            l3.file("srv/c", "c")
            l3.hardlink("srv/c-link", to: "srv/c")
            let image = TestImage(layers: [try busyboxLayer(), l2.finished(), l3.finished()])
            try await Pusher.push(image, to: registry.address, repo: "meshd/layered", tag: "1")
            try await withStore { store, root in
                let pulled = try await store.pull(try ImageReference(parsing: "\(registry.address)/meshd/layered:1"))
                #expect(pulled.layers.count == 3)
                #expect(pulled.lowerDirs == pulled.layers.reversed().map(\.path))
                // The chain IDs name the layer directories.
                #expect(pulled.layers.map(\.chainID) == Digest.chainIDs(pulled.layers.map(\.diffID)))
                let container = root + "/containers/c1"
                try FileManager.default.createDirectory(atPath: container, withIntermediateDirectories: true)
                let fs = OverlayRootfs(containerDirectory: container, lowerDirs: pulled.lowerDirs)
                try fs.mount()
                defer { try? fs.unmount() }
                #expect(readText(fs.path + "/etc/config") == "v2")
                #expect(lstatOf(fs.path + "/etc/remove-me") == nil)
                #expect(try FileManager.default.contentsOfDirectory(atPath: fs.path + "/srv").sorted() == ["c", "c-link"])
                #expect(lstatOf(fs.path + "/srv/c")?.st_ino == lstatOf(fs.path + "/srv/c-link")?.st_ino)
                let out = try Exec.check(["chroot", fs.path, "/bin/sh", "-c", "cat /etc/config; echo; ls /srv; echo hi > /tmp/w"])
                #expect(out == "v2\nc\nc-link\n")
                #expect(readText(fs.upper + "/tmp/w") == "hi\n")
                try fs.unmount()
                #expect(!fs.isMounted)
            }
        }
    }

    @Test func mirrorsAreTriedFirstForDockerHub() async throws {
        try await withRegistry { registry in
            let pushed = try await Pusher.push(
                TestImage(layers: [try busyboxLayer()]), to: registry.address, repo: "library/busybox", tag: "1.35")
            // A dead mirror first, then the real one; docker.io itself is a dead port (testOptions).
            let opts = testOptions(mirrors: ["http://127.0.0.1:\(deadPort())", "http://\(registry.address)/"])
            try await withStore(opts) { store, _ in
                let image = try await store.pull(try ImageReference(parsing: "busybox:1.35"))
                #expect(image.reference.description == "docker.io/library/busybox:1.35")
                #expect(image.repoDigest == pushed)
                // Every endpoint failing says what each one said.
                do {
                    _ = try await store.pull(try ImageReference(parsing: "busybox:missing"))
                    Issue.record("pulled a missing tag")
                } catch let e as RegistryError {
                    guard case .allEndpointsFailed(let f) = e else { throw e }
                    #expect(f.count == 3)
                    #expect(f[1].error == .manifestUnknown(reference: "library/busybox:missing", registry: registry.address))
                }
                let info = try await store.client.distributionInfo(try ImageReference(parsing: "busybox:1.35"))
                #expect(info.Descriptor.digest == pushed && info.Descriptor.mediaType == MediaType.ociManifest)
                #expect(info.Platforms == [.linuxAMD64])
            }
        }
    }

    /// An index: linux/amd64 chosen among others, the RepoDigest is the index's.
    @Test func indexChoosesPlatform() async throws {
        try await withRegistry { registry in
            let amd = TestImage(layers: [try busyboxLayer()])
            var armImage = TestImage(layers: [try busyboxLayer()])
            armImage.architecture = "arm64"
            armImage.cmd = ["arm"]
            let a = try amd.build(), b = try armImage.build()
            for img in [a, b] {
                for blob in img.layers + [img.config] {
                    try await Pusher.pushBlob(registry.address, "meshd/multi", blob.data, blob.descriptor.digest)
                }
                try await Pusher.pushManifest(
                    registry.address, "meshd/multi", img.manifestDigest.description, img.manifest, mediaType: MediaType.ociManifest)
            }
            let index = ImageIndex(manifests: [
                Descriptor(
                    mediaType: MediaType.ociManifest, digest: b.manifestDigest, size: Int64(b.manifest.count),
                    platform: Platform(architecture: "arm64", os: "linux", variant: "v8")),
                Descriptor(
                    mediaType: MediaType.ociManifest, digest: a.manifestDigest, size: Int64(a.manifest.count), platform: .linuxAMD64),
            ])
            let indexData = try JSONEncoder().encode(index)
            try await Pusher.pushManifest(registry.address, "meshd/multi", "1", indexData, mediaType: MediaType.ociIndex)
            try await withStore { store, _ in
                let ref = try ImageReference(parsing: "\(registry.address)/meshd/multi:1")
                let image = try await store.pull(ref)
                #expect(image.manifestDigest == a.manifestDigest && image.repoDigest == Digest(hashing: indexData))
                #expect(image.config.cmd == ["sh"])
                await #expect(
                    throws: RegistryError.noMatchingPlatform(
                        reference: ref.description, wanted: Platform(architecture: "s390x", os: "linux"),
                        available: index.manifests.compactMap(\.platform))
                ) {
                    try await store.pull(ref, platform: Platform(architecture: "s390x", os: "linux"))
                }
                let info = try await store.client.distributionInfo(ref)
                #expect(info.Descriptor.digest == Digest(hashing: indexData) && info.Descriptor.mediaType == MediaType.ociIndex)
                #expect(info.Platforms.map(\.architecture) == ["arm64", "amd64"])
            }
        }
    }

    /// Docker's own media types (schema 2 manifest, manifest list, rootfs.diff.tar.gzip layers),
    /// as images pushed by docker are: same pull, same checks.
    @Test func dockerSchema2AndManifestList() async throws {
        try await withRegistry { registry in
            let b = try TestImage(layers: [try busyboxLayer()]).build()
            let layer = Descriptor(
                mediaType: MediaType.dockerLayerGzip, digest: b.layers[0].descriptor.digest, size: b.layers[0].descriptor.size)
            let config = Descriptor(mediaType: MediaType.dockerConfig, digest: b.config.descriptor.digest, size: b.config.descriptor.size)
            let manifest = try JSONEncoder().encode(ImageManifest(mediaType: MediaType.dockerManifest, config: config, layers: [layer]))
            for blob in b.layers + [b.config] {
                try await Pusher.pushBlob(registry.address, "meshd/docker", blob.data, blob.descriptor.digest)
            }
            try await Pusher.pushManifest(registry.address, "meshd/docker", "v2", manifest, mediaType: MediaType.dockerManifest)
            let list = try JSONEncoder().encode(
                ImageIndex(
                    mediaType: MediaType.dockerManifestList,
                    manifests: [
                        Descriptor(
                            mediaType: MediaType.dockerManifest, digest: Digest(hashing: manifest), size: Int64(manifest.count),
                            platform: .linuxAMD64)
                    ]))
            try await Pusher.pushManifest(registry.address, "meshd/docker", "list", list, mediaType: MediaType.dockerManifestList)
            try await withStore { store, _ in
                let single = try await store.pull(try ImageReference(parsing: "\(registry.address)/meshd/docker:v2"))
                #expect(single.manifestDigest == Digest(hashing: manifest) && single.layers[0].mediaType == MediaType.dockerLayerGzip)
                let viaList = try await store.pull(try ImageReference(parsing: "\(registry.address)/meshd/docker:list"))
                #expect(viaList.repoDigest == Digest(hashing: list) && viaList.manifestDigest == single.manifestDigest)
                #expect(viaList.layers == single.layers)
                #expect(await store.statistics.blobsDownloaded == 1)
            }
        }
    }

    // MARK: what the real registry cannot be made to do

    func fakeRoutes(_ image: TestImage, repo: String, tag: String) throws -> (
        routes: [String: FakeRegistry.Response],
        built: (config: TestImage.Blob, layers: [TestImage.Blob], manifest: Data, manifestDigest: Digest)
    ) {
        let b = try image.build()
        var routes: [String: FakeRegistry.Response] = ["/v2/": .init(body: Array("{}".utf8))]
        let manifest = FakeRegistry.Response(
            headers: [("Content-Type", MediaType.ociManifest), ("Docker-Content-Digest", b.manifestDigest.description)],
            body: Array(b.manifest))
        routes["/v2/\(repo)/manifests/\(tag)"] = manifest
        routes["/v2/\(repo)/manifests/\(b.manifestDigest)"] = manifest
        for blob in b.layers + [b.config] { routes["/v2/\(repo)/blobs/\(blob.descriptor.digest)"] = .init(body: Array(blob.data)) }
        return (routes, b)
    }

    @Test func bearerTokenChallenge() async throws {
        let (routes, built) = try fakeRoutes(TestImage(layers: [try busyboxLayer()]), repo: "a/b", tag: "1")
        let fake = try await FakeRegistry(routes: routes, token: "s3cret")
        do {
            try await withStore { store, _ in
                let image = try await store.pull(try ImageReference(parsing: "\(fake.address)/a/b:1"))
                #expect(image.manifestDigest == built.manifestDigest)
                // One token for the whole pull: it is cached for the repository's scope.
                #expect(fake.requests.filter { $0 == "/token" }.count == 1)
            }
            await fake.stop()
        } catch {
            await fake.stop()
            throw error
        }
    }

    @Test func wrongTokenIsUnauthorized() async throws {
        let (routes, _) = try fakeRoutes(TestImage(layers: [try busyboxLayer()]), repo: "a/b", tag: "1")
        let fake = try await FakeRegistry(routes: routes, token: "s3cret", issued: "wrong")
        do {
            try await withStore { store, _ in
                let ref = try ImageReference(parsing: "\(fake.address)/a/b:1")
                await #expect(throws: RegistryError.unauthorized(registry: fake.address, detail: "UNAUTHORIZED: authentication required")) {
                    try await store.pull(ref)
                }
            }
            await fake.stop()
        } catch {
            await fake.stop()
            throw error
        }
    }

    @Test func tamperedManifestRefused() async throws {
        var (routes, built) = try fakeRoutes(TestImage(layers: [try busyboxLayer()]), repo: "a/b", tag: "1")
        // By tag: the body differs from what Docker-Content-Digest claims.
        var tampered = Array(built.manifest)
        tampered.insert(UInt8(ascii: " "), at: 1)
        routes["/v2/a/b/manifests/1"] = .init(
            headers: [("Content-Type", MediaType.ociManifest), ("Docker-Content-Digest", built.manifestDigest.description)], body: tampered)
        // By digest: the body is not the one the digest names.
        routes["/v2/a/b/manifests/\(built.manifestDigest)"] = .init(headers: [("Content-Type", MediaType.ociManifest)], body: tampered)
        let fake = try await FakeRegistry(routes: routes)
        do {
            try await withStore { store, _ in
                for r in ["\(fake.address)/a/b:1", "\(fake.address)/a/b@\(built.manifestDigest)"] {
                    do {
                        _ = try await store.pull(try ImageReference(parsing: r))
                        Issue.record("a tampered manifest was accepted")
                    } catch let e as RegistryError {
                        guard case .digestMismatch(_, let expected, let actual) = e else { throw e }
                        #expect(expected == built.manifestDigest && actual == Digest(hashing: tampered))
                    }
                }
            }
            await fake.stop()
        } catch {
            await fake.stop()
            throw error
        }
    }

    /// Blobs that match their digests but a config whose diff_id does not match the layer.
    @Test func diffIDMismatchRefused() async throws {
        let good = try TestImage(layers: [try busyboxLayer()]).build()
        var t = TarBuilder()
        t.file("other", "x")
        let lie = Digest(hashing: t.finished())
        var config = try JSONSerialization.jsonObject(with: good.config.data) as! [String: Any]
        config["rootfs"] = ["type": "layers", "diff_ids": [lie.description]]
        let configData = try JSONSerialization.data(withJSONObject: config)
        let configDesc = Descriptor(mediaType: MediaType.ociConfig, digest: Digest(hashing: configData), size: Int64(configData.count))
        let manifest = try JSONEncoder().encode(ImageManifest(config: configDesc, layers: good.layers.map(\.descriptor)))
        let routes: [String: FakeRegistry.Response] = [
            "/v2/a/b/manifests/1": .init(headers: [("Content-Type", MediaType.ociManifest)], body: Array(manifest)),
            "/v2/a/b/blobs/\(configDesc.digest)": .init(body: Array(configData)),
            "/v2/a/b/blobs/\(good.layers[0].descriptor.digest)": .init(body: Array(good.layers[0].data)),
        ]
        let fake = try await FakeRegistry(routes: routes)
        do {
            let actual = Digest(hashing: try busyboxLayer())
            try await withStore { store, root in
                let ref = try ImageReference(parsing: "\(fake.address)/a/b:1")
                await #expect(
                    throws: ImageStore.StoreError.diffIDMismatch(layer: good.layers[0].descriptor.digest, expected: lie, actual: actual)
                ) {
                    try await store.pull(ref)
                }
                #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/layers").isEmpty)
                #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/images/tmp").isEmpty)
            }
            await fake.stop()
        } catch {
            await fake.stop()
            throw error
        }
    }
}

/// scripts/build-images builds busybox with umoci and skopeo into the real registry; the store pulls it.
/// Serialized: each builds with umoci/skopeo and runs its own registry; two at once only slow each other.
@Suite(.serialized) struct BuildImagesScriptTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test(.enabled(if: geteuid() == 0)) func busyboxFromTheScript() async throws {
        try await withRegistry { registry in
            let out = try Exec.check([Self.repoRoot + "/scripts/build-images", "--registry", registry.address, "busybox"])
            let pushed = out.split(separator: "\n").filter { $0.hasPrefix("pushed ") }.map { $0.split(separator: " ") }
            #expect(pushed.count == 3)
            let ref = try ImageReference(parsing: String(pushed[0][1]))
            try await withStore { store, root in
                let image = try await store.pull(ref)
                #expect(image.manifestDigest == (try Digest(parsing: String(pushed[0][2]))))
                #expect(image.config.cmd == ["sh"])
                let container = root + "/containers/c"
                try FileManager.default.createDirectory(atPath: container, withIntermediateDirectories: true)
                let fs = OverlayRootfs(containerDirectory: container, lowerDirs: image.lowerDirs)
                try fs.mount()
                defer { try? fs.unmount() }
                #expect(
                    try Exec.check(["chroot", fs.path, "/bin/sh", "-c", "echo from-image; ls /bin | grep -c ."]).hasPrefix("from-image\n"))
            }
        }
    }
}

extension BuildImagesScriptTests {
    /// The slim redis (Debian's redis-server, its libraries, busybox): pulled, its server runs
    /// from the overlay rootfs and answers PING on a loopback port.
    @Test(.enabled(if: geteuid() == 0)) func redisFromTheScript() async throws {
        try await withRegistry { registry in
            let out = try Exec.check([Self.repoRoot + "/scripts/build-images", "--registry", registry.address, "redis"])
            let first = try #require(out.split(separator: "\n").first { $0.hasPrefix("pushed ") }).split(separator: " ")
            let ref = try ImageReference(parsing: String(first[1]))
            try await withStore { store, root in
                let image = try await store.pull(ref)
                #expect(image.config.cmd == ["redis-server", "--protected-mode", "no"])
                #expect(image.config.user == "redis" && image.config.workingDir == "/data" && image.config.exposedPorts == ["6379/tcp"])
                #expect(image.config.volumes == ["/data"])
                let container = root + "/containers/r"
                try FileManager.default.createDirectory(atPath: container, withIntermediateDirectories: true)
                let fs = OverlayRootfs(containerDirectory: container, lowerDirs: image.lowerDirs)
                try fs.mount()
                defer { try? fs.unmount() }
                let version = try Exec.check(["chroot", fs.path, "/usr/bin/redis-server", "--version"])
                #expect(version.hasPrefix("Redis server v=7"))
                // The server itself, on a loopback port, asked by the image's own redis-cli.
                let port = deadPort()
                // A bare chroot has no /dev: the runtime would mount one; here /dev/null goes in the upper.
                try FileManager.default.createDirectory(atPath: fs.path + "/dev", withIntermediateDirectories: true)
                #expect(mknod(fs.path + "/dev/null", S_IFCHR | 0o666, LayerUnpacker.makedev(1, 3)) == 0)
                let script =
                    "cd /data && (/usr/bin/redis-server --port \(port) --bind 127.0.0.1 --save '' >/tmp/redis.log 2>&1 &) && "
                    + "for i in $(seq 1 50); do /usr/bin/redis-cli -p \(port) ping 2>/tmp/cli.err && break; sleep 0.1; done; "
                    + "/usr/bin/redis-cli -p \(port) shutdown nosave >/tmp/cli.out 2>&1; true"
                let pong = try Exec.check(["chroot", fs.path, "/bin/sh", "-c", script])
                #expect(pong.contains("PONG"))
            }
        }
    }
}
