import Foundation
import MeshKernel
import MeshTestbed
import Testing

/// Secrets at rest on real daemons: after `swarm init`, `swarm join` and a restart, every data root is 0700 and
/// every file in it that holds a private key or a join token is 0600 (found by content, so a new secret file
/// cannot slip past), and the API socket is 0660 in the socket group. A restarted daemon narrows modes
/// someone widened, and says so on stderr.
@Suite(.serialized) struct FileModeTests {
    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
    }

    static func octal(_ m: mode_t?) -> String { m.map { String($0, radix: 8) } ?? "missing" }

    /// Every regular file under `root` whose bytes hold one of `secrets`, with its mode.
    static func secretFiles(under root: String, secrets: [String]) -> [(path: String, mode: mode_t)] {
        guard let walker = FileManager.default.enumerator(atPath: root) else { return [] }
        var found: [(String, mode_t)] = []
        let needles = secrets.filter { !$0.isEmpty }.map { Data($0.utf8) }
        for case let relative as String in walker {
            let path = "\(root)/\(relative)"
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG, let data = FileManager.default.contents(atPath: path) else {
                continue
            }
            if needles.contains(where: { data.range(of: $0) != nil }) { found.append((path, st.st_mode & 0o7777)) }
        }
        return found
    }

    /// The gid the daemon gives its socket when no `--group` is passed: docker's if it exists, else root's.
    static var defaultSocketGroup: gid_t {
        var entry = Glibc.group()
        var found: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        return getgrnam_r("docker", &entry, &buffer, buffer.count, &found) == 0 && found != nil ? entry.gr_gid : 0
    }

    /// Records an issue for each mode of node `n` that is wider than allowed; returns the secret files found.
    @discardableResult
    static func checkModes(_ c: DaemonCluster, _ n: Int, secrets: [String], _ when: String) -> [String] {
        let root = c.dataRoot(n)
        #expect(mode(root) == 0o700, "\(when): data root \(root) is \(octal(mode(root)))")
        var st = stat()
        if lstat(c.socket(n), &st) == 0 {
            #expect(st.st_mode & 0o7777 == 0o660, "\(when): socket is \(octal(st.st_mode & 0o7777))")
            #expect(st.st_gid == defaultSocketGroup, "\(when): socket group \(st.st_gid)")
        } else {
            Issue.record("\(when): no socket at \(c.socket(n))")
        }
        let files = secretFiles(under: root, secrets: secrets)
        for f in files { #expect(f.mode & 0o077 == 0, "\(when): \(f.path) holds secrets and is \(octal(f.mode))") }
        return files.map(\.path)
    }

    @Test func secretsAreOwnerOnlyAfterInitJoinAndRestart() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let c = try await DaemonCluster.build(tag: "mdm", nodes: 2)
        defer { c.destroy() }
        // Before any swarm: the daemon made its data root itself, 0700.
        for n in 1...2 { #expect(Self.mode(c.dataRoot(n)) == 0o700, "node\(n) data root \(Self.octal(Self.mode(c.dataRoot(n))))") }

        _ = ClusterTests.check(try c.docker(1, ["swarm", "init", "--advertise-addr", c.address(1)]), "swarm init", c)
        let workerToken = try c.docker(1, ["swarm", "join-token", "-q", "worker"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let managerToken = try c.docker(1, ["swarm", "join-token", "-q", "manager"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(workerToken.hasPrefix("SWMTKN-") && managerToken.hasPrefix("SWMTKN-"))
        // Private keys (the CA's, the node's) in PEM, the join tokens' secret halves, the gossip key.
        let record = FileManager.default.contents(atPath: "\(c.dataRoot(1))/node.json").flatMap {
            try? JSONSerialization.jsonObject(with: $0) as? [String: Any]
        }
        let gossipKeys = record?["gossipKeys"] as? [String] ?? []
        #expect(!gossipKeys.isEmpty, "node.json holds no gossip key")
        let secrets = ["PRIVATE KEY", String(workerToken.suffix(25)), String(managerToken.suffix(25))] + gossipKeys
        let onManager = Self.checkModes(c, 1, secrets: secrets, "after init")
        // The sweep must find the files it is there to check, or it proves nothing.
        #expect(onManager.contains("\(c.dataRoot(1))/node.json") && onManager.contains("\(c.dataRoot(1))/cluster.sqlite"), "\(onManager)")

        _ = ClusterTests.check(try c.docker(2, ["swarm", "join", "--token", workerToken, "\(c.address(1)):2377"]), "swarm join", c)
        let onWorker = Self.checkModes(c, 2, secrets: secrets, "after join")
        #expect(onWorker.contains("\(c.dataRoot(2))/node.json"), "\(onWorker)")

        // Someone widens the modes while the manager is down; the next start narrows them and says so.
        c.stop(1)
        let root = c.dataRoot(1)
        chmod(root, 0o755)
        chmod("\(root)/node.json", 0o644)
        chmod("\(root)/cluster.sqlite", 0o644)
        try c.start(1)
        try await c.waitForSocket(1)
        Self.checkModes(c, 1, secrets: secrets, "after restart")
        let log = c.log(1)
        for path in [root, "\(root)/node.json", "\(root)/cluster.sqlite"] {
            let expected = "warning: \(path) was mode \(path == root ? "755" : "644")"
            #expect(log.contains(expected), "no warning \"\(expected)\" in:\n\(log.suffix(2000))")
        }
        // And the restarted manager still runs the swarm, the worker reconnected.
        let ready = try await ClusterTests.eventually(.seconds(30)) {
            ClusterTests.lines(try c.docker(1, ["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]).stdout).filter {
                $0.hasSuffix(" Ready")
            }.count == 2
        }
        let nodes = try c.docker(1, ["node", "ls"]).stdout
        #expect(ready, "after the restart: \(nodes)")

        // A worker killed hard and restarted keeps its modes.
        c.kill9(2)
        try c.start(2)
        try await c.waitForSocket(2)
        Self.checkModes(c, 2, secrets: secrets, "after the worker's restart")
    }

    /// `--group` on a real daemon (outside any swarm, so it opens nothing but its socket): the socket is in that
    /// group before clients can use it, and a group that does not exist stops the daemon before it starts.
    @Test func theSocketGroupComesFromDashDashGroup() async throws {
        guard getuid() == 0 else { throw NotRootCluster() }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshd-group-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let meshd = DataplaneLab.locateMeshd()
        let socket = "\(dir)/api.sock"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: meshd)
        p.arguments = ["daemon", "--data-root", "\(dir)/root", "--socket", socket, "--lb", "nftables", "--group", "47914"]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer {
            if p.isRunning {
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
            try? FileManager.default.removeItem(atPath: dir)
        }
        let up = await ClusterTests.eventually(.seconds(30)) {
            (try? Exec.run(["curl", "-s", "--max-time", "2", "--unix-socket", socket, "http://d/_ping"]))?.stdout == "OK"
        }
        #expect(up, "the daemon's API never answered")
        var st = stat()
        #expect(
            lstat(socket, &st) == 0 && st.st_gid == 47914 && st.st_mode & 0o7777 == 0o660,
            "gid \(st.st_gid) mode \(Self.octal(st.st_mode & 0o7777))")
        #expect(Self.mode("\(dir)/root") == 0o700)
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)

        let refused = try Exec.run([meshd, "daemon", "--data-root", "\(dir)/root", "--socket", socket, "--group", "no-such-group-meshd"])
        #expect(!refused.succeeded && refused.stderr.contains("group no-such-group-meshd does not exist"), "\(refused.stderr)")
        #expect(lstat(socket, &st) != 0, "a daemon that refused its --group made a socket")
    }
}
