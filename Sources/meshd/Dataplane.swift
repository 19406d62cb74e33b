import ArgumentParser
import Foundation
import MeshDataplane
import MeshKernel

/// `meshd dataplane …`: drives the dataplane alone from a state file, for tests, benchmarks and debugging.
struct Dataplane: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a node's desired dataplane state, or show what meshd owns.",
        subcommands: [Apply.self, Show.self])

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the kernel match a state file (JSON DataplaneState) once; print what changed.",
            discussion:
                "Exit status: 0 applied (nothing printed when nothing changed), 1 the kernel refused a change (the namespace it was in is left as it was), 2 the state is invalid (nothing touched), 3 applied but for an encrypted network this kernel cannot protect with ESP (none of it programmed, its tasks not attached; the kernel's reason on stderr)."
        )
        @Option(help: "The state file (JSON).") var state: String
        @Option(help: "Load balancer: auto (IPVS when the kernel has it), nftables or ipvs.") var lb = "nftables"
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: state)) } catch {
                FileHandle.standardError.write(Data("meshd: cannot read \(state): \(error.localizedDescription)\n".utf8))
                throw ExitCode(2)
            }
            let decoded: DataplaneState
            do { decoded = try JSONDecoder().decode(DataplaneState.self, from: data) } catch {
                FileHandle.standardError.write(Data("meshd: \(state) is not a dataplane state: \(Self.explain(error))\n".utf8))
                throw ExitCode(2)
            }
            let kind: LoadBalancerKind
            switch lb {
            case "auto": kind = LoadBalancerKind.detect(in: try decoded.node.namespace.map { try NetworkNamespace.open(named: $0) })
            default:
                guard let k = LoadBalancerKind(rawValue: lb) else { throw ValidationError("--lb must be auto, nftables or ipvs") }
                kind = k
            }
            let reconciler = Reconciler(lb: kind)
            do {
                let report = try await reconciler.apply(decoded)
                if json {
                    let enc = JSONEncoder()
                    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                    print(String(decoding: try enc.encode(report), as: UTF8.self))
                } else {
                    for line in report.changes { print(line) }
                }
            } catch {
                FileHandle.standardError.write(Data("meshd: \(error)\n".utf8))
                if case DataplaneError.invalidState = error { throw ExitCode(2) }
                throw ExitCode(1)
            }
            // Everything else is applied; an encrypted network this kernel cannot protect is not.
            let refused = await reconciler.refusedNetworks()
            if !refused.isEmpty {
                for (_, why) in refused.sorted(by: { $0.key < $1.key }) { FileHandle.standardError.write(Data("meshd: \(why)\n".utf8)) }
                throw ExitCode(3)
            }
        }

        static func explain(_ error: Error) -> String {
            switch error {
            case DecodingError.keyNotFound(let k, let c): return "missing \(path(c.codingPath + [k]))"
            case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
                return "\(path(c.codingPath)): \(c.debugDescription)"
            case DecodingError.dataCorrupted(let c): return "\(path(c.codingPath)): \(c.debugDescription)"
            default: return "\(error)"
            }
        }
        static func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(
                in: CharacterSet(charactersIn: "."))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the sandboxes, endpoints and load balancers meshd made for a node.")
        @Option(help: "The node id.") var node: String
        @Option(help: "The node's network namespace (default: this one).") var netns: String?
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let models = try await Reconciler().snapshot(nodeID: node, namespace: netns)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(models.map(SandboxView.init)), as: UTF8.self))
                return
            }
            if models.isEmpty { print("node \(node): meshd owns nothing here") }
            for m in models {
                print("sandbox \(m.name)")
                if let v = m.vxlan { print("  vxlan0  vni \(v.vni) local \(v.local) dstport \(v.port) mtu \(v.mtu) mac \(v.mac)") }
                print("  lo      " + m.loAddresses.sorted().map { "\($0)/32" }.joined(separator: " "))
                for (veth, e) in m.endpoints.sorted(by: { $0.key < $1.key }) {
                    print("  task    \(veth) → \(e.address == .v4(0) ? "(unchecked)" : "\(e.address)")")
                }
                for (ip, mac) in m.neighbours.sorted(by: { $0.key < $1.key }) {
                    print("  remote  \(ip) via \(mac) → \(m.fdb[mac].map { "\($0)" } ?? "no FDB entry")")
                }
                for (vip, t) in m.balancer.vips.sorted(by: { $0.key < $1.key }) {
                    print("  vip     \(vip) → " + t.map { "\($0.address)" }.joined(separator: " "))
                }
                for (k, t) in m.balancer.published.sorted(by: { $0.key < $1.key }) {
                    print("  publish \(k) → " + t.map { "\($0.address):\($0.port ?? 0)" }.joined(separator: " "))
                }
            }
        }
    }
}

/// `dataplane show --json`: the kernel picture of one sandbox.
struct SandboxView: Encodable {
    var name: String
    var vxlan: [String: String]?
    var lo: [String]
    var endpoints: [String: String]
    var neighbours: [String: String]
    var fdb: [String: String]
    var vips: [String: [String]]
    var published: [String: [String]]
    init(_ m: SandboxModel) {
        name = m.name
        vxlan = m.vxlan.map { ["vni": "\($0.vni)", "local": "\($0.local)", "port": "\($0.port)", "mtu": "\($0.mtu)", "mac": "\($0.mac)"] }
        lo = m.loAddresses.sorted().map(\.description)
        endpoints = Dictionary(uniqueKeysWithValues: m.endpoints.map { ($0.key, $0.value.address.description) })
        neighbours = Dictionary(uniqueKeysWithValues: m.neighbours.map { ($0.key.description, $0.value.description) })
        fdb = Dictionary(uniqueKeysWithValues: m.fdb.map { ($0.key.description, $0.value.description) })
        vips = Dictionary(uniqueKeysWithValues: m.balancer.vips.map { ($0.key.description, $0.value.map(\.address.description)) })
        published = Dictionary(
            uniqueKeysWithValues: m.balancer.published.map { ($0.key.description, $0.value.map { "\($0.address):\($0.port ?? 0)" }) })
    }
}
