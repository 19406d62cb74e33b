import Foundation
import MeshAPI
import MeshCluster
import MeshDaemon
import MeshKernel
import Testing

/// Random and mutated service specs: plausible values most of the time, edges and garbage otherwise, so
/// that both the refusals and the paths past them are exercised.
struct SpecFuzzer {
    var rng: SplitMix64
    /// References a spec may name: real network IDs and names, plus ones that do not exist.
    var networkRefs: [String]

    mutating func chance(_ p: Double) -> Bool { Double(rng.next() >> 11) / Double(1 << 53) < p }
    mutating func pick<T>(_ values: [T]) -> T { values[Int(rng.next() % UInt64(values.count))] }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }

    mutating func text() -> String {
        let pool: [String] = [
            "web", "a", "", "-x", "x-", "with space", "ünï", "a_b", "A1", String(repeating: "n", count: 63),
            String(repeating: "n", count: 64), "x.y", "\u{0}", "svc", "db", "api-1",
        ]
        var s = pick(pool)
        if chance(0.3) { s += String(int(0...999)) }
        return s
    }

    mutating func uint64() -> UInt64 {
        pick([0, 1, 2, 3, 5, 10, APIMapping.maxReplicas, APIMapping.maxReplicas + 1, .max, UInt64(UInt32.max), rng.next() % 50, rng.next()])
    }

    mutating func int64() -> Int64 {
        pick([0, 1, -1, 1_000_000, 5_000_000_000, .max, .min, Int64(bitPattern: rng.next()), Int64(int(0...10)) * 1_000_000_000])
    }

    mutating func port() -> MeshAPI.PortConfig {
        var p = MeshAPI.PortConfig(
            Protocol: chance(0.8) ? pick([nil, "tcp", "udp", "sctp", ""]) : pick(["icmp", "TCP", "x"]),
            TargetPort: chance(0.8) ? UInt32(int(1...65535)) : pick([0, 65535, 65536, .max]),
            PublishedPort: chance(0.5) ? nil : (chance(0.8) ? UInt32(int(0...65535)) : pick([65536, .max])),
            PublishMode: chance(0.9) ? pick([nil, "ingress", "host", ""]) : "both")
        if chance(0.2) { p.Name = text() }
        return p
    }

    mutating func updateConfig() -> MeshAPI.UpdateConfig? {
        guard chance(0.6) else { return nil }
        return MeshAPI.UpdateConfig(
            Parallelism: chance(0.7) ? uint64() : nil, Delay: chance(0.7) ? int64() : nil,
            FailureAction: chance(0.9) ? pick([nil, "", "pause", "continue", "rollback"]) : text(),
            Monitor: chance(0.7) ? int64() : nil,
            MaxFailureRatio: chance(0.7) ? pick([0, 0.5, 1, 1.0001, -0.1, .nan, .infinity]) : nil,
            Order: chance(0.9) ? pick([nil, "", "stop-first", "start-first"]) : text())
    }

    mutating func mode() -> MeshAPI.ServiceMode? {
        switch int(0...9) {
        case 0: return nil
        case 1: return .global
        case 2: return MeshAPI.ServiceMode(Replicated: .init())
        case 3:
            var m = MeshAPI.ServiceMode(Replicated: nil, Global: nil)
            m.GlobalJob = .init()
            return m
        case 4: return MeshAPI.ServiceMode(Replicated: .init(Replicas: 1), Global: .init())
        case 5: return MeshAPI.ServiceMode(Replicated: nil, Global: nil)
        default: return .replicated(chance(0.8) ? UInt64(int(0...4)) : uint64())
        }
    }

    mutating func spec() -> MeshAPI.ServiceSpec {
        var container = MeshAPI.ContainerSpec(
            Image: chance(0.9) ? pick(["meshd/whoami", "busybox", "nginx:1.27"]) : pick(["", String(repeating: "i", count: 600)]),
            Args: chance(0.5) ? (0..<int(0...3)).map { _ in text() } : nil,
            Env: chance(0.5) ? (0..<int(0...3)).map { _ in "K\(int(0...9))=\(text())" } : nil)
        if chance(0.2) { container.Command = [text()] }
        if chance(0.2) { container.Labels = [text(): text()] }
        if chance(0.1) { container.Hostname = text() }
        var task = MeshAPI.TaskSpec(ContainerSpec: chance(0.97) ? container : nil)
        if chance(0.4) {
            task.RestartPolicy = MeshAPI.RestartPolicy(
                Condition: chance(0.9) ? pick([nil, "", "none", "on-failure", "any"]) : text(),
                Delay: chance(0.6) ? int64() : nil, MaxAttempts: chance(0.6) ? uint64() : nil, Window: chance(0.2) ? int64() : nil)
        }
        if chance(0.3) {
            let pool = [
                "node.role==manager", "node.role!=worker", "node.labels.zone==a", "node.hostname!=x", "node.id==abc",
                "node.role==boss", "bogus", "==", "node.labels.==x", "node.platform.os==linux", "a==b==c",
            ]
            task.Placement = Placement(Constraints: (0..<int(0...2)).map { _ in pick(pool) })
        }
        if chance(0.4) {
            task.Networks = (0..<int(1...2)).map { _ in
                NetworkAttachmentConfig(Target: pick(networkRefs), Aliases: chance(0.3) ? [text()] : nil)
            }
        }
        if chance(0.1) { task.ForceUpdate = uint64() }
        var endpoint: MeshAPI.EndpointSpec?
        if chance(0.6) {
            endpoint = MeshAPI.EndpointSpec(
                Mode: chance(0.9) ? pick([nil, "", "vip", "dnsrr"]) : text(),
                Ports: chance(0.6) ? (0..<int(0...3)).map { _ in port() } : nil)
        }
        return MeshAPI.ServiceSpec(
            Name: chance(0.95) ? text() : nil, Labels: chance(0.3) ? [text(): text()] : nil, TaskTemplate: task, Mode: mode(),
            UpdateConfig: updateConfig(), RollbackConfig: updateConfig(), EndpointSpec: endpoint)
    }

    /// One field of a valid spec changed: the inputs closest to what the CLI sends.
    mutating func mutate(_ base: MeshAPI.ServiceSpec) -> MeshAPI.ServiceSpec {
        var s = base
        let other = spec()
        switch int(0...9) {
        case 0: s.Name = other.Name
        case 1: s.TaskTemplate = other.TaskTemplate
        case 2: s.Mode = other.Mode
        case 3: s.UpdateConfig = other.UpdateConfig
        case 4: s.RollbackConfig = other.RollbackConfig
        case 5: s.EndpointSpec = other.EndpointSpec
        case 6: s.TaskTemplate.Networks = other.TaskTemplate.Networks
        case 7: s.TaskTemplate.RestartPolicy = other.TaskTemplate.RestartPolicy
        case 8:
            let ports = (s.EndpointSpec?.Ports ?? []) + [port()]
            s.EndpointSpec?.Ports = ports
        default: s.Labels = other.Labels
        }
        return s
    }
}

@Suite struct FuzzTests {
    static let statuses: Set<Int> = [400, 404, 409, 500, 501]

    /// Every input maps to a valid spec or an error with a Docker status (the normaliser's and the
    /// cluster model's rules, the whole pipeline); a stored spec shows back as a spec that maps to itself.
    @Test func mappingNeverCrashesAndRoundTrips() {
        var f = SpecFuzzer(rng: SplitMix64(seed: 0x6D65_7368), networkRefs: ["n1", "demo", "nosuch", ""])
        var mapped = 0, refused = 0
        for i in 0..<20_000 {
            let input = i % 2 == 0 ? f.spec() : f.mutate(webSpec("base", networks: ["n1"], ports: [MeshAPI.PortConfig(TargetPort: 80)]))
            do {
                let stored = try APIMapping.clusterServiceSpec(input)
                do { try stored.validate() } catch {
                    refused += 1
                    let e = APIMapping.engineError(error)
                    #expect(Self.statuses.contains(e.status) && !e.message.isEmpty, "input \(i): \(e)")
                    continue
                }
                mapped += 1
                let again = try APIMapping.clusterServiceSpec(APIMapping.apiServiceSpec(stored))
                #expect(again == stored, "input \(i)")
            } catch {
                refused += 1
                #expect(Self.statuses.contains(error.status) && !error.message.isEmpty, "input \(i): \(error)")
            }
        }
        #expect(mapped > 1000 && refused > 1000)
    }

    /// The same inputs through the controller against a real store: created (and then readable, listable
    /// and updatable with itself) or refused with a Docker status, never a crash or a storage error.
    @Test func createAndUpdateNeverCrash() async throws {
        try await TestCluster.with(workers: 1) { c in
            let ctl = c.controller
            let demo = try await ctl.createNetwork(NetworkCreateRequest(Name: "demo"))
            var f = SpecFuzzer(
                rng: SplitMix64(seed: 0x6170_6931), networkRefs: [demo.Id, "demo", String(demo.Id.prefix(5)), "ingress", "nosuch"])
            var created = 0, refused: [Int: Int] = [:]
            for i in 0..<1_500 {
                let input =
                    i % 3 == 0 ? f.spec() : f.mutate(webSpec("base\(i)", networks: [demo.Id], ports: [MeshAPI.PortConfig(TargetPort: 80)]))
                do throws(EngineError) {
                    let id = try await ctl.createService(input).ID
                    created += 1
                    let service = try await ctl.inspectService(id)
                    // Updating with what inspect returned stores the same spec and replaces no task.
                    _ = try await ctl.updateService(id, version: service.Version.Index, spec: service.Spec, rollback: false)
                    let after = try await ctl.inspectService(id)
                    #expect(after.Spec == service.Spec && after.UpdateStatus == service.UpdateStatus, "input \(i)")
                    if i % 4 == 0 {
                        let changed = f.mutate(after.Spec)
                        do throws(EngineError) {
                            _ = try await ctl.updateService(id, version: after.Version.Index, spec: changed, rollback: false)
                        } catch {
                            refused[error.status, default: 0] += 1
                            #expect(Self.statuses.contains(error.status), "update \(i): \(error)")
                        }
                    }
                    if i % 5 == 0 { try await ctl.removeService(id) }
                } catch {
                    refused[error.status, default: 0] += 1
                    #expect(Self.statuses.contains(error.status) && !error.message.isEmpty, "input \(i): \(error)")
                    // 500 only for a pool that ran dry, never for the store.
                    if error.status == 500 { #expect(error.message.contains("ResourceExhausted"), "input \(i): \(error)") }
                }
            }
            #expect(created > 100 && refused.values.reduce(0, +) > 100)
            // The store is still consistent: the allocator rebuilds from it, and listing works.
            let snapshot = try c.store.snapshot()
            let settings = try await ctl.read { m throws(ClusterError) in m.settings }
            #expect(throws: Never.self) {
                try NetworkAllocator.rebuild(from: snapshot, pools: settings.defaultAddrPool, subnetSize: settings.subnetSize)
            }
            #expect(try await ctl.listServices(ServiceFilter(), status: true).count == snapshot.services.count)
        }
    }
}
