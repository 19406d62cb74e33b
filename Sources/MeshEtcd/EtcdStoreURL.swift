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

    /// The same store with the member on `host` tried first: a manager that runs beside an etcd member
    /// talks to it, so a partition leaves each side with its own member instead of everyone waiting on
    /// the first one listed.
    public func preferring(host: String) -> EtcdStoreURL {
        var u = self
        if let i = endpoints.firstIndex(where: { $0.host == host }) {
            u.endpoints = [endpoints[i]] + endpoints.enumerated().filter { $0.offset != i }.map(\.element)
        }
        return u
    }

    /// A client of these endpoints whose calls give up after `timeoutMilliseconds` (the leadership lease's
    /// renewals need answers well within its TTL).
    public func client(timeoutMilliseconds: Int64) -> EtcdClient {
        EtcdClient(transport: EtcdHTTPTransport(endpoints: endpoints, timeout: .milliseconds(timeoutMilliseconds)))
    }

    /// The store this names: one client over every endpoint (it rotates through them on failure).
    public func open() -> EtcdClusterStore {
        EtcdClusterStore(client: EtcdClient(endpoints: endpoints), keys: EtcdKeys(prefix: prefix))
    }
}
