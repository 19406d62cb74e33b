import Foundation
import MeshAPI
import MeshKernel
import Testing

/// A small deterministic generator, so a failing input can be reproduced from its seed.
typealias SplitMix = MeshKernel.SplitMix64

/// Request bodies the docker CLI sends (from the reference log), the seeds of the mutations.
let cliBodies: [(String, String)] = [
    (
        "/v1.50/swarm/init",
        #"{"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "192.168.1.10", "DataPathAddr": "", "DataPathPort": 0, "ForceNewCluster": false, "Spec": {"Labels": null, "Orchestration": {}, "Raft": {"ElectionTick": 0, "HeartbeatTick": 0}, "Dispatcher": {}, "CAConfig": {}, "TaskDefaults": {}, "EncryptionConfig": {"AutoLockManagers": false}}, "AutoLockManagers": false, "Availability": "", "DefaultAddrPool": [], "SubnetSize": 24}"#
    ),
    (
        "/v1.50/networks/create",
        #"{"Driver": "overlay", "Scope": "", "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": "10.20.0.0/24", "Gateway": "10.20.0.1"}]}, "Internal": false, "Attachable": true, "Ingress": false, "ConfigOnly": false, "ConfigFrom": null, "Options": {"encrypted": ""}, "Labels": {}, "Name": "secure"}"#
    ),
    (
        "/v1.50/services/create",
        #"{"Name": "g", "Labels": {}, "TaskTemplate": {"ContainerSpec": {"Image": "traefik/whoami:latest", "Args": ["--port", "80"], "Env": ["A=1"], "Init": false, "DNSConfig": {}}, "Resources": {"Limits": {}, "Reservations": {}}, "RestartPolicy": {"Condition": "on-failure", "Delay": 5000000000, "MaxAttempts": 0}, "Placement": {"Constraints": ["node.role==manager"]}, "Networks": [{"Target": "secure"}], "ForceUpdate": 0}, "Mode": {"Global": {}}, "UpdateConfig": {"Parallelism": 2, "Delay": 10000000000, "FailureAction": "rollback", "Monitor": 5000000000, "MaxFailureRatio": 0, "Order": "start-first"}, "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 3000000000, "MaxFailureRatio": 0, "Order": "stop-first"}, "EndpointSpec": {"Mode": "dnsrr", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]}}"#
    ),
    (
        "/v1.50/services/create",
        #"{"Name": "r", "Labels": {}, "TaskTemplate": {"ContainerSpec": {"Image": "nginx:latest", "Init": false, "DNSConfig": {}}, "Resources": {"Limits": {}, "Reservations": {}}, "Placement": {}, "ForceUpdate": 0}, "Mode": {"Replicated": {"Replicas": 2}}, "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "udp", "TargetPort": 9000, "PublishedPort": 9000, "PublishMode": "ingress"}, {"Protocol": "tcp", "TargetPort": 7000, "PublishedPort": 7000, "PublishMode": "ingress"}]}}"#
    ),
    ("/v1.50/nodes/node1/update?version=11", #"{"Labels": {}, "Role": "manager", "Availability": "drain"}"#),
    (
        "/v1.50/swarm/join",
        #"{"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "", "RemoteAddrs": ["192.168.1.10:2377"], "JoinToken": "SWMTKN-1-abc", "Availability": ""}"#
    ),
    (
        "/v1.50/swarm/update?rotateManagerToken=false&rotateManagerUnlockKey=false&rotateWorkerToken=true&version=11",
        #"{"Name":"default","Labels":{},"Orchestration":{"TaskHistoryRetentionLimit":5},"Raft":{"SnapshotInterval":10000,"ElectionTick":10,"HeartbeatTick":1},"Dispatcher":{"HeartbeatPeriod":5000000000},"CAConfig":{"NodeCertExpiry":7776000000000000},"TaskDefaults":{},"EncryptionConfig":{"AutoLockManagers":false}}"#
    ),
]

let fuzzTokens = [
    "null", "true", "-1", "1e999", "\"\"", "{}", "[]", "\"x\"", "18446744073709551616", "0.5", "\"\\u0000\"", "[[[[[[[[", "}", "\"",
]

func mutate(_ s: String, _ rng: inout SplitMix) -> [UInt8] {
    var b = Array(s.utf8)
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0 where !b.isEmpty: b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        case 1 where !b.isEmpty: b.removeSubrange(Int.random(in: 0..<b.count, using: &rng)...)
        case 2: b.insert(contentsOf: fuzzTokens.randomElement(using: &rng)!.utf8, at: Int.random(in: 0...b.count, using: &rng))
        case 3:
            // Replace a value after a colon with another JSON token: wrong types, huge numbers, nulls.
            let colons = b.indices.filter { b[$0] == UInt8(ascii: ":") }
            if let c = colons.randomElement(using: &rng) {
                let end = b[(c + 1)...].firstIndex { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "}") } ?? b.count
                b.replaceSubrange((c + 1)..<end, with: Array(fuzzTokens.randomElement(using: &rng)!.utf8))
            }
        case 4 where b.count > 2:
            let i = Int.random(in: 0..<b.count, using: &rng), j = Int.random(in: i..<b.count, using: &rng)
            b.insert(contentsOf: b[i..<j], at: Int.random(in: 0...b.count, using: &rng))
        default: b = Array(b.shuffled(using: &rng).prefix(Int.random(in: 0...64, using: &rng)))
        }
    }
    return b
}

@Suite("fuzz")
struct FuzzTests {
    static let inputs = 12_000

    /// Mutated CLI bodies and random URIs straight into the router: every answer is a status in
    /// 200…599, and every error is `{"message": …}` with exactly `application/json`.
    @Test func routerSurvivesMutatedRequests() async throws {
        var rng = SplitMix(seed: 0x5EED_0008)
        let engine = InMemoryEngine()
        _ = try await engine.initSwarm(SwarmInitRequest())
        let router = APIRouter(backend: engine)
        let pathParts = [
            "v1.50", "v1.5", "v9.99", "v1.", "_ping", "swarm", "nodes", "services", "tasks", "networks", "create", "update", "logs",
            "init", "join", "leave", "unlockkey", "%", "%zz", "%2F", "..", "distribution", "json", "prune", "secrets", "self", "",
        ]
        let queries = [
            "filters=%7B%22name%22%3A%7B%22x%22%3Atrue%7D%7D", "filters=%7B", "filters=%5B%5D", "filters=%7B%22id%22%3A%5B1%5D%7D",
            "version=", "version=-1", "version=99999999999999999999", "status=1", "insertDefaults=true", "force=1", "tail=-5",
            "since=nan", "stdout=1", "rollback=previous", "rollback=next", "scope=swarm", "a=%", "&&&", "=x",
        ]
        var statuses: [Int: Int] = [:]
        for n in 0..<Self.inputs {
            let method: HTTPMethodName
            let uri: String
            var body: [UInt8] = []
            if n % 2 == 0 {
                let (path, json) = cliBodies.randomElement(using: &rng)!
                method = .post
                uri = path
                body = mutate(json, &rng)
            } else {
                method = [.get, .post, .delete, .head, .put].randomElement(using: &rng)!
                let segments = (0..<Int.random(in: 0...5, using: &rng)).map { _ in pathParts.randomElement(using: &rng)! }
                let q = (0..<Int.random(in: 0...3, using: &rng)).map { _ in queries.randomElement(using: &rng)! }
                uri = "/" + segments.joined(separator: "/") + (q.isEmpty ? "" : "?" + q.joined(separator: "&"))
                if method == .post { body = mutate(cliBodies.randomElement(using: &rng)!.1, &rng) }
            }
            let response = await router.handle(methodName: method.name, uri: uri, contentType: "application/json", body: body)
            let code = response.statusCode
            statuses[code, default: 0] += 1
            #expect((200..<600).contains(code))
            if code >= 400, case .bytes(let bytes) = response.body {
                #expect(response.headers.contains { $0.0 == "Content-Type" && $0.1 == "application/json" }, "\(uri)")
                let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
                #expect(object?["message"] is String, "\(uri): \(String(decoding: bytes, as: UTF8.self))")
            }
        }
        // The mutations reach both the decoders' errors and the backend.
        #expect(statuses[400, default: 0] > Self.inputs / 10)
        #expect(statuses.keys.contains { $0 < 300 })
        print("router fuzz: \(Self.inputs) inputs, statuses \(statuses.sorted { $0.key < $1.key })")
    }

    /// Random pieces of multiplexed log streams: frames come out whole or not at all, and a header
    /// announcing a huge frame fails before anything is allocated for it.
    @Test func logStreamDecoderSurvivesRandomBytes() {
        var rng = SplitMix(seed: 0x10_65)
        var frames = 0
        for _ in 0..<Self.inputs {
            var d = LogStreamDecoder(maxFrame: 4096)
            var valid: [UInt8] = []
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                let payload = (0..<Int.random(in: 0...50, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                valid += [UInt8.random(in: 1...2, using: &rng), 0, 0, 0, 0, 0, 0, UInt8(payload.count)] + payload
            }
            let bytes = Int.random(in: 0..<3, using: &rng) == 0 ? mutate(String(decoding: valid, as: UTF8.self), &rng) : valid
            var at = 0
            while at < bytes.count {
                let n = Int.random(in: 1...16, using: &rng)
                do {
                    frames += try d.feed(Array(bytes[at..<min(bytes.count, at + n)])).count
                } catch {
                    break
                }
                at += n
            }
            #expect(d.buffered <= 4096 + 8 + 16)
        }
        #expect(frames > 0)
    }
}

enum HTTPMethodName: CaseIterable {
    case get, post, delete, head, put
    var name: String { String(describing: self).uppercased() }
}
