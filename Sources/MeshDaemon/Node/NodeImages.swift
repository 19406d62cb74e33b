import Foundation
import MeshImage
import MeshRuntime
#if canImport(Glibc)
    import Glibc
#endif

/// The node's images as the OCI driver takes them: a pull through the node's `ImageStore` (its
/// registry options: mirrors, insecure registries), then one overlay root file system per task
/// under `<dataRoot>/rootfs/<task>` (the layers shared and read-only, the task's writes in its
/// own upper directory).
///
/// Pull policy, as swarmkit's executor: a reference pinned by digest that is already here runs
/// without asking a registry; any other reference is pulled each time a task is prepared (cheap
/// when the layers are here: a manifest request), and when that pull fails but the image is
/// here the task runs what is here (the failure is in the log).
public actor NodeImages: RootfsProvider {
    public nonisolated let store: ImageStore
    public nonisolated let dataRoot: String
    private var mounted: [String: OverlayRootfs] = [:]
    /// What a fetch just resolved, by reference: the tasks prepared from it within `freshFor` use it
    /// without asking the registry again (a burst of replicas shares one pull; a later rollout asks again).
    private var fresh: [String: (image: Image, at: ContinuousClock.Instant)] = [:]
    static let freshFor: Duration = .seconds(60)
    /// Pull failures that fell back to the local copy: logged for each task that ran the local copy.
    private let warn: @Sendable (String) -> Void

    public init(dataRoot: String, options: RegistryOptions, warn: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.dataRoot = dataRoot
        let client = RegistryClient(options: options)
        do { store = try ImageStore(dataRoot: dataRoot, client: client) } catch {
            // The HTTP client must be shut down before it goes, even when the store never opened.
            Task { try? await client.shutdown() }
            throw error
        }
        self.warn = warn
    }

    /// Ends the registry client's connections (its HTTP client must be shut down before it goes).
    public func shutdown() async {
        try? await store.client.shutdown()
    }

    nonisolated var rootfsDirectory: String { dataRoot + "/rootfs" }

    /// What a fetch resolved for `reference` within `freshFor`.
    func freshImage(_ reference: String) -> Image? {
        guard let f = fresh[reference], ContinuousClock.now - f.at < Self.freshFor else { return nil }
        return f.image
    }

    public func isFetched(image reference: String) async -> Bool {
        if freshImage(reference) != nil { return true }
        guard let ref = try? ImageReference(parsing: reference) else { return true }  // prepare says why
        if let d = ref.digest { return await store.image(ref.withDigest(d)) != nil }
        return false
    }

    public func fetch(image reference: String) async throws(RuntimeError) {
        let image = try await image(for: reference)
        let now = ContinuousClock.now
        fresh = fresh.filter { now - $0.value.at < Self.freshFor }
        fresh[reference] = (image, now)
    }

    /// The image `reference` names, pulled unless it is pinned and present (or fetched just now).
    public func image(for reference: String) async throws(RuntimeError) -> Image {
        if let image = freshImage(reference) { return image }
        let ref: ImageReference
        do { ref = try ImageReference(parsing: reference) } catch {
            throw .pull(image: reference, reason: "invalid reference format: \(error.description)")
        }
        // Pinned (as `service create` pins: name:tag@digest): the digest alone names the content.
        if let d = ref.digest, let local = await store.image(ref.withDigest(d)) { return local }
        do { return try await store.pull(ref) } catch {
            let reason = "\(error)"
            if let local = await store.image(ref.digest.map(ref.withDigest) ?? ref) {
                warn("pull of \(ref) failed, running the local copy \(local.repoDigest): \(reason)")
                return local
            }
            throw .pull(image: ref.familiar, reason: reason)
        }
    }

    public func prepare(image reference: String, task: String) async throws(RuntimeError) -> PreparedImage {
        let image = try await image(for: reference)
        let directory = "\(rootfsDirectory)/\(task)"
        // A task prepared again (a relaunch) keeps its overlay and so its writes.
        if let fs = mounted[task], fs.isMounted { return Self.prepared(reference, image, fs) }
        let fs = OverlayRootfs(containerDirectory: directory, lowerDirs: image.lowerDirs)
        do {
            for dir in [rootfsDirectory, directory] where mkdir(dir, 0o700) != 0 && errno != EEXIST {
                throw OverlayRootfs.Failure.mkdir(path: dir, errno: errno)
            }
            try fs.mount()
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw .files("task \(task): root file system for \(image.reference.familiar): \(error)")
        }
        mounted[task] = fs
        return Self.prepared(reference, image, fs)
    }

    static func prepared(_ reference: String, _ image: Image, _ fs: OverlayRootfs) -> PreparedImage {
        let c = image.config
        return PreparedImage(
            reference: reference, rootfs: fs.path,
            config: ImageRunConfig(
                entrypoint: c.entrypoint ?? [], cmd: c.cmd ?? [], env: c.env, workingDir: c.workingDir, user: c.user,
                stopSignal: c.stopSignal ?? "",
                healthcheck: c.healthcheck))
    }

    public func release(task: String) async {
        let fs = mounted.removeValue(forKey: task) ?? OverlayRootfs(containerDirectory: "\(rootfsDirectory)/\(task)", lowerDirs: [])
        Self.remove(fs, directory: "\(rootfsDirectory)/\(task)")
    }

    /// Overlays a previous life of the daemon left (its tasks were ended before this runs):
    /// unmounted and removed.
    public func removeLeftovers() async -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: rootfsDirectory) else { return 0 }
        var removed = 0
        for name in names where mounted[name] == nil {
            let directory = "\(rootfsDirectory)/\(name)"
            Self.remove(OverlayRootfs(containerDirectory: directory, lowerDirs: []), directory: directory)
            removed += 1
        }
        return removed
    }

    /// Lazily: a process still inside the merged view (an exec that outlived its container)
    /// must not keep the task's directory from going.
    static func remove(_ fs: OverlayRootfs, directory: String) {
        if fs.isMounted { _ = umount2(fs.path, Int32(MNT_DETACH)) }
        // Never remove through a view that is still mounted: that would write whiteouts, not free anything.
        if !fs.isMounted { try? FileManager.default.removeItem(atPath: directory) }
    }
}
