import MeshCluster

/// How the etcd client reaches etcd: POSTs of JSON to the v3 gateway's paths. A protocol so that unit tests can
/// see exactly what is sent (and answer it), and so a gRPC transport could replace the gateway later.
public protocol EtcdTransport: Sendable {
    /// POSTs `body` to `path` (e.g. `/v3/kv/range`) and returns the answer's body. Blocks the calling thread
    /// for the round trip (the cluster store's API is synchronous); never call it on a NIO event loop.
    func call(_ path: String, body: [UInt8]) throws(StoreError) -> [UInt8]
    /// The same call without blocking a thread.
    func send(_ path: String, body: [UInt8]) async throws(StoreError) -> [UInt8]
    /// A streaming call (watch): every newline-delimited message of the answer as it arrives, until the server
    /// ends it or the consumer stops iterating (which closes the connection). Fails with a `StoreError`.
    func stream(_ path: String, body: [UInt8]) -> AsyncThrowingStream<[UInt8], any Error>
}
