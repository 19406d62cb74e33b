import Foundation

/// Where a swarm keeps its state when several managers share it: `etcd://host:port[,host:port…][/prefix]`,
/// as `meshd daemon --cluster-store` takes it (k3s's `--datastore-endpoint` has the same shape). The prefix
/// defaults to `/meshd/v1/`, so several swarms can share one etcd under different prefixes.
public struct EtcdStoreURL: Sendable, Equatable, CustomStringConvertible {
    public var endpoints: [EtcdHTTPTransport.Endpoint]
    public var prefix: String

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public init(endpoints: [EtcdHTTPTransport.Endpoint], prefix: String = "/meshd/v1/") {
        self.endpoints = endpoints
        self.prefix = prefix
    }

    public init(parsing text: String) throws(Invalid) {
        guard text.hasPrefix("etcd://") else {
            throw Invalid(description: "cluster store \(text): only etcd://host:port[,host:port…][/prefix] is supported")
        }
        let rest = text.dropFirst("etcd://".count)
        let hosts: Substring
        var prefix = "/meshd/v1/"
        if let slash = rest.firstIndex(of: "/") {
            hosts = rest[..<slash]
            let p = String(rest[slash...])
            if p != "/" { prefix = p.hasSuffix("/") ? p : p + "/" }
        } else {
            hosts = rest
        }
        var endpoints: [EtcdHTTPTransport.Endpoint] = []
        for h in hosts.split(separator: ",", omittingEmptySubsequences: false) {
            guard let e = EtcdHTTPTransport.Endpoint(String(h)) else {
                throw Invalid(description: "cluster store \(text): \"\(h)\" is not host:port")
            }
            endpoints.append(e)
        }
        guard !endpoints.isEmpty else { throw Invalid(description: "cluster store \(text) names no etcd endpoint") }
        self.endpoints = endpoints
        self.prefix = prefix
    }

    public var description: String {
        "etcd://" + endpoints.map(\.description).joined(separator: ",") + (prefix == "/meshd/v1/" ? "" : prefix)
    }

    /// The store this names: one client over every endpoint (it rotates through them on failure).
    public func open() -> EtcdClusterStore {
        EtcdClusterStore(client: EtcdClient(endpoints: endpoints), keys: EtcdKeys(prefix: prefix))
    }
}
