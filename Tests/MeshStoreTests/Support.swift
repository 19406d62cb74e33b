import Foundation
import MeshCluster
import MeshEtcd
import MeshTestbed
import MeshValues
import Synchronization
import Testing

let t0 = Date(timeIntervalSince1970: 1_800_000_000)

/// The two store backends every conformance test runs against.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, etcd
    var testDescription: String { rawValue }
    /// etcd keeps history to watch from; SQLite relists instead.
    var keepsHistory: Bool { self == .etcd }
}

func etcdStore(_ server: EtcdServer, prefix: String = "/meshd/v1/") -> EtcdClusterStore {
    EtcdClusterStore(
        client: EtcdClient(endpoints: server.endpoints.compactMap(EtcdHTTPTransport.Endpoint.init)), keys: EtcdKeys(prefix: prefix))
}

/// Runs `body` with a fresh store of `backend`: a temporary SQLite file, or a real etcd started for the test
/// (killed by pid and its data removed afterwards, whatever happens).
func withStore<R: Sendable>(
    _ backend: Backend, _ body: (any ClusterStore, EtcdServer?) async throws -> R
) async throws -> R {
    switch backend {
    case .sqlite:
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshstore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        return try await body(try SQLiteClusterStore(path: dir.appendingPathComponent("cluster.sqlite").path), nil)
    case .etcd:
        let server = try await EtcdServer.start(tag: "meshstore")
        defer { server.stop() }
        return try await body(etcdStore(server), server)
    }
}

/// The next `n` commits, or fewer if they do not come within `seconds`.
func take(_ n: Int, from watch: StoreWatch, seconds: Double = 5) async -> [StoreCommit] {
    await withTaskGroup(of: [StoreCommit]?.self) { g in
        g.addTask {
            var out: [StoreCommit] = []
            for await c in watch.commits {
                out.append(c)
                if out.count == n { break }
            }
            return out
        }
        g.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = await g.next() ?? nil
        g.cancelAll()
        return first ?? []
    }
}

/// Follows a stream in the background, keeping every element with when it came, so a test can wait for the
/// n-th one more than once (cancelling a reader would end the stream, and with it a watch or a candidacy).
final class StreamLog<Element: Sendable>: Sendable {
    private let entries = Mutex<[(Element, ContinuousClock.Instant)]>([])
    private let reader = Mutex<Task<Void, Never>?>(nil)

    static func follow(_ stream: AsyncStream<Element>) -> StreamLog<Element> {
        let log = StreamLog<Element>()
        let t = Task { for await e in stream { log.entries.withLock { $0.append((e, .now)) } } }
        log.reader.withLock { $0 = t }
        return log
    }

    var all: [Element] { entries.withLock { $0.map(\.0) } }
    var times: [ContinuousClock.Instant] { entries.withLock { $0.map(\.1) } }

    /// The first `n` elements once there are that many; everything so far after `seconds`.
    func wait(for n: Int, seconds: Double = 5) async -> [Element] {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            let now = all
            if now.count >= n { return Array(now.prefix(n)) }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return all
    }

    func stop() { reader.withLock { $0?.cancel() } }
    deinit { reader.withLock { $0?.cancel() } }
}

func node(_ id: String, addresses: [NetworkAttachment] = []) -> ClusterNode {
    var n = ClusterNode(id: id, hostname: id, role: .worker, availability: .active, state: .ready, now: t0)
    n.attachments = addresses
    return n
}

func service(_ id: String, name: String? = nil, vips: [VirtualIP] = [], ports: [PortConfig] = []) -> ClusterService {
    var s = ClusterService(
        id: id, spec: ServiceSpec(name: name ?? id, task: TaskSpec(image: "meshd/whoami"), mode: .replicated(replicas: 1)), now: t0)
    s.endpoint = ServiceEndpoint(ports: ports, virtualIPs: vips)
    return s
}

func task(_ id: String, service: String, address: NetworkAttachment? = nil) -> ClusterTask {
    var t = ClusterTask(id: id, serviceID: service, slot: 1, spec: TaskSpec(image: "meshd/whoami"), specVersion: 1, now: t0)
    if let address { t.networks = [address] }
    return t
}

func network(_ id: String, name: String, vni: UInt32, subnet: String, gateway: String) -> ClusterNetwork {
    ClusterNetwork(id: id, name: name, vni: vni, subnet: IPPrefix(subnet)!, gateway: IPAddress(gateway)!, now: t0)
}

/// Runs `body(0..<n)` on `n` threads at once and returns their results in order.
func onThreads<R: Sendable>(_ n: Int, _ body: @escaping @Sendable (Int) -> R) -> [R] {
    let results = Mutex<[Int: R]>([:])
    let done = DispatchGroup()
    for i in 0..<n {
        done.enter()
        Thread {
            let r = body(i)
            results.withLock { $0[i] = r }
            done.leave()
        }.start()
    }
    done.wait()
    return results.withLock { r in (0..<n).compactMap { r[$0] } }
}
