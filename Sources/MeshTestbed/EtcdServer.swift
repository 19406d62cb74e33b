import Foundation
import Synchronization

/// Debian's `etcd` for tests: one member or a loopback cluster of several, each on 127.0.0.1 with random ports
/// below 32768 and its data in a temporary directory. Members are spawned directly (posix_spawn, not
/// Foundation's Process, whose waits a long-lived child would hold up) and reaped by pid; `stop` kills every
/// member it started and removes the directory. Missing etcd is an error, never a skip.
public final class EtcdServer: Sendable {
    public struct Member: Sendable {
        public var name: String
        public var clientPort: Int
        public var peerPort: Int
        public var dataDir: String
        public var logPath: String
        /// Where it listens: 127.0.0.1 in this namespace, or a node's address inside its namespace.
        public var host = "127.0.0.1"
        /// The network namespace it runs in (nil: this one).
        public var namespace: String?
        /// `host:port`, what the store's transport takes.
        public var endpoint: String { "\(host):\(clientPort)" }
    }

    public static let binary = "/usr/bin/etcd"

    public let directory: String
    public let members: [Member]
    private let pids: Mutex<[String: pid_t]>

    /// What a restarted member is started with again (its data dir makes etcd ignore the cluster flags).
    private let initialCluster: String
    private let token: String

    private init(directory: String, members: [Member], pids: [String: pid_t], initialCluster: String, token: String) {
        self.initialCluster = initialCluster
        self.token = token
        self.directory = directory
        self.members = members
        self.pids = Mutex(pids)
    }

    public var endpoints: [String] { members.map(\.endpoint) }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts `count` members forming one cluster and waits until every one reports healthy. Ports that turn
    /// out to be taken (a member exits at once) are drawn again, up to 5 times.
    public static func start(members count: Int = 1, tag: String = "etcd") async throws -> EtcdServer {
        try await start(count: count, places: nil, tag: tag)
    }

    /// One member per place, each inside its network namespace on the address given (a node's underlay
    /// address), so nodes reach the store over the lab's network and a test can cut a member off with
    /// its node.
    public static func start(in places: [(namespace: String, address: String)], tag: String = "etcd") async throws -> EtcdServer {
        try await start(count: places.count, places: places, tag: tag)
    }

    private static func start(count: Int, places: [(namespace: String, address: String)]?, tag: String) async throws -> EtcdServer {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw Failure(description: "\(binary) is missing: install Debian's etcd-server (scripts/setup does)")
        }
        var lastError = ""
        for _ in 0..<5 {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-\(UInt32.random(in: 0...UInt32.max))").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            var ports = Set<Int>()
            while ports.count < 2 * count {
                let p = Int.random(in: 20000..<32000)
                if portIsFree(p) { ports.insert(p) }
            }
            let sorted = Array(ports)
            let members = (0..<count).map { i in
                var m = Member(
                    name: "m\(i + 1)", clientPort: sorted[2 * i], peerPort: sorted[2 * i + 1], dataDir: "\(dir)/m\(i + 1)",
                    logPath: "\(dir)/m\(i + 1).log")
                if let place = places?[i] {
                    // In its own namespace every port is free: etcd's well-known ones read better in logs.
                    m.host = place.address
                    m.namespace = place.namespace
                    m.clientPort = 2379
                    m.peerPort = 2380
                }
                return m
            }
            let initialCluster = members.map { "\($0.name)=http://\($0.host):\($0.peerPort)" }.joined(separator: ",")
            var pids: [String: pid_t] = [:]
            do {
                for m in members { pids[m.name] = try spawn(m, initialCluster: initialCluster, token: "\(tag)-\(sorted[0])") }
            } catch {
                for (_, pid) in pids { Self.kill(pid) }
                try? FileManager.default.removeItem(atPath: dir)
                throw error
            }
            let server = EtcdServer(
                directory: dir, members: members, pids: pids, initialCluster: initialCluster, token: "\(tag)-\(sorted[0])")
            do {
                try await server.waitHealthy()
                return server
            } catch {
                lastError = "\(error)"
                server.stop()
            }
        }
        throw Failure(description: "etcd did not start: \(lastError)")
    }

    private static func portIsFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    private static func spawn(_ m: Member, initialCluster: String, token: String) throws -> pid_t {
        let client = "http://\(m.host):\(m.clientPort)", peer = "http://\(m.host):\(m.peerPort)"
        // nsenter sets the namespace and execs etcd in place: the pid is etcd's.
        let enter = m.namespace.map { ["/usr/bin/nsenter", "--net=/run/netns/\($0)"] } ?? []
        let argv =
            enter + [
                binary, "--name", m.name, "--data-dir", m.dataDir,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", token,
                "--heartbeat-interval", "100", "--election-timeout", "1000", "--logger", "zap", "--log-outputs", "stderr",
            ]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, m.logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgs, environ)
        guard rc == 0 else { throw Failure(description: "cannot start \(binary): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Until `/health` of every running member says true (a leader is elected), 20 s at most.
    public func waitHealthy(timeout: Duration = .seconds(20)) async throws {
        let deadline = ContinuousClock.now + timeout
        for m in members where pid(m.name) != nil {
            while true {
                if let pid = pid(m.name), Self.exited(pid) {
                    pids.withLock { _ = $0.removeValue(forKey: m.name) }
                    throw Failure(description: "etcd \(m.name) exited: \(log(m.name).suffix(2000))")
                }
                let curl = ["curl", "-s", "--max-time", "1", "http://\(m.endpoint)/health"]
                let out = try? Exec.run((m.namespace.map { ["nsenter", "--net=/run/netns/\($0)"] } ?? []) + curl)
                if out?.stdout.contains("\"true\"") == true { break }
                if ContinuousClock.now > deadline {
                    throw Failure(description: "etcd \(m.name) not healthy after \(timeout): \(log(m.name).suffix(2000))")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    public func pid(_ member: String) -> pid_t? { pids.withLock { $0[member] } }

    public func log(_ member: String) -> String {
        guard let m = members.first(where: { $0.name == member }) else { return "" }
        return (try? String(contentsOfFile: m.logPath, encoding: .utf8)) ?? ""
    }

    /// SIGKILLs one member and reaps it (the others keep running).
    public func kill(member: String) {
        guard let pid = pids.withLock({ $0.removeValue(forKey: member) }) else { return }
        Self.kill(pid)
    }

    /// Starts a member that was killed again, on its data (it rejoins the cluster it was in).
    public func restart(member: String) throws {
        guard pid(member) == nil, let m = members.first(where: { $0.name == member }) else { return }
        let pid = try Self.spawn(m, initialCluster: initialCluster, token: token)
        pids.withLock { $0[member] = pid }
    }

    /// The member etcd's raft elected, as `/v3/maintenance/status` of each running member says; nil
    /// while there is none.
    public func leader() -> String? {
        for m in members where pid(m.name) != nil {
            let call = ["curl", "-s", "--max-time", "2", "-X", "POST", "-d", "{}", "http://\(m.endpoint)/v3/maintenance/status"]
            guard let out = try? Exec.run((m.namespace.map { ["nsenter", "--net=/run/netns/\($0)"] } ?? []) + call),
                let json = try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any],
                let header = json["header"] as? [String: Any], let me = header["member_id"] as? String,
                let leader = json["leader"] as? String
            else { continue }
            if me == leader { return m.name }
        }
        return nil
    }

    /// Sends `signal` to one member (SIGSTOP/SIGCONT to freeze it).
    public func signal(member: String, _ signal: Int32) {
        if let pid = pid(member) { _ = Glibc.kill(pid, signal) }
    }

    /// Kills every member still running and removes the data.
    public func stop() {
        for (_, pid) in pids.withLock({ p -> [String: pid_t] in
            defer { p = [:] }
            return p
        }) {
            Self.kill(pid)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private static func kill(_ pid: pid_t) {
        _ = Glibc.kill(pid, SIGCONT)
        _ = Glibc.kill(pid, SIGKILL)
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno == ECHILD) { return }
            usleep(10_000)
        }
    }

    private static func exited(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        return r == pid || (r < 0 && errno == ECHILD)
    }
}
