import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// Tasks as OCI containers run by runc, in the namespace `TaskRuntime.prepare` made: one bundle
/// per task under `<dataRoot>/containers/<name>` (config.json from `RuntimeSpecBuilder`, the
/// init's pid file, the json-file log), `runc run` in the foreground as the task's process
/// (detached from ours like any task process: its own process group, its own reaper thread),
/// its exit code the container's.
public actor OCIDriverCore {
    public let nodeID: String
    public let dataRoot: String
    public let runc: Runc
    public let images: any RootfsProvider
    public let volumes: LocalVolumes
    private var prepared: [String: PreparedImage] = [:]
    /// Each task's anonymous volumes, removed with it.
    private var anonymousVolumes: [String: [String]] = [:]
    /// The volumes each task on this node mounts, from its launch until it is released: what
    /// `volume rm` must not take away.
    private var mountedVolumes: [String: Set<String>] = [:]
    private var containers: [String: ContainerTask] = [:]

    /// `runcRoot` defaults to `<dataRoot>/runc`, the node's own runc state directory.
    public init(nodeID: String, dataRoot: String, images: any RootfsProvider, runc binary: String = "runc", runcRoot: String? = nil) {
        self.nodeID = nodeID
        self.dataRoot = dataRoot
        self.images = images
        volumes = LocalVolumes(dataRoot: dataRoot)
        runc = Runc(binary: binary, root: runcRoot ?? dataRoot + "/runc")
    }

    func prepare(_ t: TaskLaunch) async throws(RuntimeError) {
        prepared[t.id] = try await images.prepare(image: t.image, task: t.id)
    }

    func launch(_ t: TaskLaunch, in s: TaskSandbox) async throws(RuntimeError) -> ContainerTask {
        if let c = containers[t.id], c.process.current == .running { return c }
        guard let image = prepared[t.id] else { throw .files("task \(t.id): launched before its image was prepared") }
        let c = t.container
        let name = RuntimeSpecBuilder.containerName(c, taskID: t.id)
        // runc's rule for ids; a name outside it would also be a path outside the bundles.
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_+-.".contains($0)) }), name.first != "."
        else { throw .unsupported("container name \"\(name)\": runc takes letters, digits and _ + - . only") }
        let bundle = "\(dataRoot)/containers/\(name)"
        let signalName = c.stopSignal ?? image.config.stopSignal
        guard let stopSignal = SignalName.parse(signalName) else { throw .unsupported("unknown stop signal \"\(signalName)\"") }

        var input = RuntimeSpecBuilder.Input(
            taskID: t.id, nodeID: nodeID, env: t.env, container: c, image: image, networkNamespace: s.namespacePath,
            resolvConf: s.etcDirectory + "/resolv.conf", hosts: bundle + "/hosts", hostnameFile: s.etcDirectory + "/hostname",
            users: UserDatabase(rootfs: image.rootfs))
        // The container's /etc/hosts names its own host (programs that look themselves up, as
        // mariadb does, fail without it); the process driver's tasks keep the task's file as is.
        let host = RuntimeSpecBuilder.hostname(input)
        var hosts = t.hosts
        if !hosts.split(whereSeparator: \.isWhitespace).contains(Substring(host)) { hosts += "127.0.1.1\t\(host)\n" }
        for line in c.extraHosts { hosts += line + "\n" }
        input.mounts =
            try await resolveMounts(c.mounts, taskID: t.id, image: image) + (try TaskFiles(dataRoot: dataRoot, taskID: t.id).write(t.files))
        let spec = try RuntimeSpecBuilder.build(input)
        do {
            try FileManager.default.createDirectory(atPath: bundle, withIntermediateDirectories: true)
            try hosts.write(toFile: bundle + "/hosts", atomically: true, encoding: .utf8)
            try spec.encoded().write(to: URL(fileURLWithPath: bundle + "/config.json"))
            try? FileManager.default.removeItem(atPath: bundle + "/init.pid")
        } catch {
            throw .files("container \(name): cannot write its bundle: \(error.localizedDescription)")
        }
        // A relaunch: the ended container's state still holds the name.
        if FileManager.default.fileExists(atPath: "\(runc.root)/\(name)") { try? runc.delete(name) }

        // What `docker inspect` shows of how it was made, split as swarmkit splits it.
        let facts = ContainerFacts(
            image: image.reference, entrypoint: c.command.isEmpty ? image.config.entrypoint : c.command,
            cmd: c.command.isEmpty && c.args.isEmpty ? image.config.cmd : c.args, user: c.user ?? image.config.user,
            namespace: s.namespace, created: Date(),
            // resolveMounts makes one runtime mount per service mount, in order.
            mounts: zip(c.mounts.enumerated(), input.mounts).map { item, resolved in
                let (i, m) = item
                let name = m.kind == .volume ? (m.source.isEmpty ? Self.anonymousVolume(taskID: t.id, mount: i) : m.source) : ""
                return ContainerFacts.Mount(
                    kind: m.kind, name: name, source: m.kind == .tmpfs ? "" : resolved.source, destination: m.target,
                    readOnly: m.readOnly)
            })
        do {
            let task = try await run(
                name: name, bundle: bundle, taskID: t.id, image: image, spec: spec, stopSignal: stopSignal, facts: facts)
            containers[t.id] = task
            return task
        } catch {
            // Nothing of a launch that failed stays: no runc state, no bundle.
            try? runc.delete(name)
            try? FileManager.default.removeItem(atPath: bundle)
            throw error
        }
    }

    private func run(
        name: String, bundle: String, taskID: String, image: PreparedImage, spec: RuntimeSpec, stopSignal: Int32, facts: ContainerFacts
    ) async throws(RuntimeError) -> ContainerTask {
        let log = bundle + "/json.log"
        let process = try TaskProcess(
            argv: runc.argv(["run", "--bundle", bundle, "--pid-file", bundle + "/init.pid", name]),
            environment: ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], output: .jsonLines(log))
        // Running once runc has made the init (it writes the pid file just before starting it).
        let deadline = ContinuousClock.now + .seconds(30)
        var initPID: pid_t = 0
        while initPID == 0 {
            if let text = try? String(contentsOfFile: bundle + "/init.pid", encoding: .utf8),
                let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
            {
                initPID = pid
                break
            }
            if process.current != .running {
                let said = JSONLog.read(log).map(\.log).joined()
                throw .runc(verb: "run", status: "\(process.current)", output: said)
            }
            if ContinuousClock.now > deadline {
                Glibc.kill(process.pid, SIGKILL)
                _ = await process.wait()
                // An init runc had already made survives its runc: delete --force ends it, and if
                // runc cannot, the error says so rather than leaving it unnoticed.
                let left = await runc.deleteOffPool(name).map { " (and runc delete --force: \($0))" } ?? ""
                throw .runc(verb: "run", status: "no container after 30 s" + left, output: JSONLog.read(log).map(\.log).joined())
            }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return ContainerTask(
            taskID: taskID, name: name, bundle: bundle, rootfs: image.rootfs, spec: spec, process: process, initPID: initPID,
            stopSignal: stopSignal, runc: runc, facts: facts)
    }

    func release(_ taskID: String) async {
        if let c = containers.removeValue(forKey: taskID) { await c.remove() }
        if prepared.removeValue(forKey: taskID) != nil { await images.release(task: taskID) }
        mountedVolumes[taskID] = nil
        for name in anonymousVolumes.removeValue(forKey: taskID) ?? [] { try? volumes.remove(name) }
        TaskFiles(dataRoot: dataRoot, taskID: taskID).remove()
    }

    /// The service's mounts as runc binds them: a bind's source must exist (swarmkit's check, so a
    /// typo fails the task instead of mounting an empty directory); a named volume is made on
    /// first use and seeded with the image's files at the target; an unnamed one is the task's.
    func resolveMounts(_ mounts: [ContainerMount], taskID: String, image: PreparedImage) async throws(RuntimeError) -> [RuntimeSpec.Mount] {
        var out: [RuntimeSpec.Mount] = []
        for (i, m) in mounts.enumerated() {
            guard m.target.hasPrefix("/"), !m.target.split(separator: "/").contains("..") else {
                throw .unsupported("mount target \"\(m.target)\" is not an absolute path without ..")
            }
            if !m.unapplied.isEmpty {
                throw .unsupported("mount at \(m.target): \(m.unapplied.joined(separator: ", ")) not supported by meshd's local mounts")
            }
            let access = m.readOnly ? "ro" : "rw"
            switch m.kind {
            case .bind:
                guard FileManager.default.fileExists(atPath: m.source) else {
                    throw .files("invalid mount config for type \"bind\": bind source path does not exist: \(m.source)")
                }
                out.append(.init(destination: m.target, type: "bind", source: m.source, options: ["rbind", access, "rprivate"]))
            case .volume:
                let anonymous = m.source.isEmpty
                let name = anonymous ? Self.anonymousVolume(taskID: taskID, mount: i) : m.source
                let volumes = volumes, labels = m.volumeLabels, rootfs = image.rootfs, target = m.target, noCopy = m.noCopy
                // File work (a copy of the image's files can be seconds): off the cooperative pool.
                let made = await ExecSession.offThread { () -> Result<Bool, LocalVolumes.Failure> in
                    do throws(LocalVolumes.Failure) {
                        let made = try volumes.create(name, labels: labels, anonymous: anonymous)
                        if !noCopy { try volumes.seed(name, rootfs: rootfs, target: target) }
                        return .success(made.created)
                    } catch {
                        return .failure(error)
                    }
                }
                switch made {
                case .success(let created): if created && anonymous { anonymousVolumes[taskID, default: []].append(name) }
                case .failure(let error): throw .files("volume \(name) for \(m.target): \(error)")
                }
                mountedVolumes[taskID, default: []].insert(name)
                out.append(
                    .init(destination: m.target, type: "bind", source: volumes.dataPath(name), options: ["rbind", access, "rprivate"]))
            case .tmpfs:
                var options = ["nosuid", "nodev", "noexec", access]
                if let size = m.tmpfsSizeBytes, size > 0 { options.append("size=\(size)") }
                if let mode = m.tmpfsMode { options.append("mode=" + String(mode, radix: 8)) }
                out.append(.init(destination: m.target, type: "tmpfs", source: "tmpfs", options: options))
            }
        }
        return out
    }

    /// The volume of a task's `index`th mount that names none: the task's own (it goes with the task).
    static func anonymousVolume(taskID: String, mount index: Int) -> String { "\(taskID)-anon\(index)" }

    /// `docker volume rm`: refused while any task on this node mounts it (running, stopped or still
    /// starting: until its driver released it), checked and done in one step on this actor so no
    /// launch can take the volume up in between.
    public func removeVolume(_ name: String) throws(VolumeRemoval) {
        let users = mountedVolumes.filter { $0.value.contains(name) }.keys.map { containers[$0]?.name ?? $0 }.sorted()
        guard users.isEmpty else { throw .inUse(users) }
        do { try volumes.remove(name) } catch { throw .failed(error) }
    }

    public enum VolumeRemoval: Error {
        case inUse([String])
        case failed(LocalVolumes.Failure)
    }

    public func container(_ taskID: String) -> ContainerTask? { containers[taskID] }

    /// The image config of a prepared task (its HEALTHCHECK, for the agent).
    public func imageConfig(_ taskID: String) -> ImageRunConfig? { prepared[taskID]?.config }

    /// Every container of this node's tasks, running or ended (until the task is removed).
    public func all() -> [ContainerTask] { Array(containers.values) }

    /// Containers a previous life of this daemon left in its runc root: deleted (killed first),
    /// their bundles removed, as the process driver's leftovers are.
    func removeLeftovers() async -> Int {
        let known = Set(containers.values.map(\.name))
        var removed = 0
        for id in runc.list() where !known.contains(id) {
            try? runc.delete(id)
            try? FileManager.default.removeItem(atPath: "\(dataRoot)/containers/\(id)")
            removed += 1
        }
        // Their root file systems, once nothing runs on them, and their anonymous volumes (named ones stay).
        _ = await images.removeLeftovers()
        let live = Set(anonymousVolumes.values.joined())
        TaskFiles.removeLeftovers(dataRoot: dataRoot, keeping: Set(containers.keys))
        for v in volumes.list() where v.anonymous && !live.contains(v.name) { try? volumes.remove(v.name) }
        return removed
    }
}

/// The OCI driver as the runtime sees it: a value around the actor that owns the bundles.
public struct OCIDriver: TaskDriver {
    public let core: OCIDriverCore
    public var kind: String { "oci" }
    public init(_ core: OCIDriverCore) { self.core = core }
    public init(nodeID: String, dataRoot: String, images: any RootfsProvider, runc: String = "runc") {
        core = OCIDriverCore(nodeID: nodeID, dataRoot: dataRoot, images: images, runc: runc)
    }
    /// Every image the catalog does not map: the image store says whether it can supply it.
    public func accepts(_ t: TaskLaunch) -> Bool { true }
    public func prepare(_ t: TaskLaunch) async throws(RuntimeError) { try await core.prepare(t) }
    public func launch(_ t: TaskLaunch, in s: TaskSandbox) async throws(RuntimeError) -> any TaskHandle {
        try await core.launch(t, in: s)
    }
    public func release(_ taskID: String) async { await core.release(taskID) }
    public func removeLeftovers() async -> Int { await core.removeLeftovers() }
}

/// One task's container.
public final class ContainerTask: TaskHandle {
    public let taskID: String
    /// The container's id and name: `<service>.<slot>.<taskid>`.
    public let name: String
    public let bundle: String
    public let rootfs: String
    public let spec: RuntimeSpec
    public let process: TaskProcess
    /// The container's init, as the host sees it.
    public let initPID: pid_t
    public let stopSignal: Int32
    public let facts: ContainerFacts
    let runc: Runc
    private let removed = Mutex(false)

    init(
        taskID: String, name: String, bundle: String, rootfs: String, spec: RuntimeSpec, process: TaskProcess, initPID: pid_t,
        stopSignal: Int32, runc: Runc, facts: ContainerFacts
    ) {
        self.facts = facts
        self.taskID = taskID
        self.name = name
        self.bundle = bundle
        self.rootfs = rootfs
        self.spec = spec
        self.process = process
        self.initPID = initPID
        self.stopSignal = stopSignal
        self.runc = runc
    }

    public var taskPID: pid_t { initPID }
    public var command: [String] { spec.process.args }
    public var logPath: String { bundle + "/json.log" }

    /// The image's (or service's) stop signal through `runc kill`, SIGKILL after `grace`. A PID 1
    /// with no handler for the signal ignores it, so the grace period is what ends those.
    /// When `runc kill` fails, the signal goes to our own child, the foreground `runc run` (which
    /// forwards it to the container), never to the init's host PID: that one is not our child, so
    /// once it has exited its number may already belong to another process.
    public func stop(grace: Duration) async -> TaskProcess.State {
        if process.current != .running { return process.current }
        if await !runc.killOffPool(name, signal: stopSignal) { Glibc.kill(process.pid, stopSignal) }
        let deadline = ContinuousClock.now + grace
        while process.current == .running && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.current != .running { return process.current }
        // SIGKILL on `runc run` cannot be forwarded; `remove()`'s `runc delete --force` ends the container then.
        if await !runc.killOffPool(name, signal: SIGKILL) { Glibc.kill(process.pid, SIGKILL) }
        return await process.wait()
    }

    /// `runc delete --force` (its state and cgroups) and the bundle; once.
    public func remove() async {
        guard
            removed.withLock({ r in
                defer { r = true }
                return !r
            })
        else { return }
        if process.current == .running { _ = await stop(grace: .seconds(2)) }
        await runc.deleteOffPool(name)
        try? FileManager.default.removeItem(atPath: bundle)
    }

    public func logEntries() -> [LogEntry] { JSONLog.read(logPath) }

    /// A signal to the container's init (`runc kill`); false when runc refused (it has ended).
    public func signal(_ number: Int32) async -> Bool { await runc.killOffPool(name, signal: number) }
    public func log() -> String { logEntries().map(\.log).joined() }
}

/// How a container was made, beyond its runtime spec: what `docker inspect` reports.
public struct ContainerFacts: Sendable, Equatable {
    /// The image reference the task asked for.
    public var image: String
    public var entrypoint: [String]
    public var cmd: [String]
    /// As the service or image gave it; empty: root.
    public var user: String
    /// The task's named network namespace.
    public var namespace: String
    /// When `runc run` was started (also its `StartedAt`: a task's container is never restarted).
    public var created: Date
    /// The service's mounts as made (`docker inspect`'s Mounts).
    public var mounts: [Mount]

    public struct Mount: Sendable, Equatable {
        public var kind: ContainerMount.Kind
        /// A volume's name (the task's anonymous one included); empty otherwise.
        public var name: String
        /// The host path bound (empty for tmpfs).
        public var source: String
        public var destination: String
        public var readOnly: Bool
    }
}
