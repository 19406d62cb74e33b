import Foundation
import MeshCluster

/// Where the cluster lives in etcd, under one prefix (default `/meshd/v1/`):
/// - `objects/<table>/<id>`: an object's JSON (its `version` is the key's mod revision, not the stored field);
/// - `values/<key>`: cluster-wide values (settings, the swarm record);
/// - `names/<table>/<name>` → ID: the unique-name claim of services and networks;
/// - `claims/<claim>` → `<kind>/<id>`: addresses (`ipam/<net>/<ip>`), subnets, VNIs, published ports;
/// - `election/<lease>`: the managers' campaign keys (EtcdElection).
public struct EtcdKeys: Sendable, Equatable {
    public let prefix: String

    public init(prefix: String = "/meshd/v1/") {
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    func data(_ text: String) -> Data { Data((prefix + text).utf8) }

    public var all: Data { Data(prefix.utf8) }
    public var objects: Data { data("objects/") }
    public var values: Data { data("values/") }
    public var election: Data { data("election/") }

    func objects<T: StoredObject>(_ type: T.Type) -> Data { data("objects/\(T.table)/") }
    func object<T: StoredObject>(_ type: T.Type, id: String) -> Data { data("objects/\(T.table)/\(id)") }
    func value(_ key: String) -> Data { data("values/\(key)") }
    func name<T: StoredObject>(_ type: T.Type, _ name: String) -> Data { data("names/\(T.table)/\(name)") }
    func claim(_ claim: String) -> Data { data("claims/\(claim)") }

    /// What a key under the prefix is, for the watch.
    enum Parsed: Equatable {
        case object(table: String, id: String)
        case value(String)
        case other
    }

    func parse(_ key: Data) -> Parsed {
        guard let text = String(data: key, encoding: .utf8), text.hasPrefix(prefix) else { return .other }
        let rest = text.dropFirst(prefix.count)
        if rest.hasPrefix("objects/") {
            let parts = rest.dropFirst("objects/".count).split(separator: "/", maxSplits: 1)
            guard parts.count == 2 else { return .other }
            return .object(table: String(parts[0]), id: String(parts[1]))
        }
        if rest.hasPrefix("values/") { return .value(String(rest.dropFirst("values/".count))) }
        return .other
    }

    /// A key as text for errors, without the prefix.
    func describe(_ key: Data) -> String {
        let text = String(decoding: key, as: UTF8.self)
        return text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text
    }
}
