import Foundation
import MeshCluster

/// JSON in and out of the gateway, with decoding failures as typed errors that quote what came.
enum EtcdJSON {
    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Every message type here is plain data; encoding cannot fail.
        return (try? [UInt8](encoder.encode(value))) ?? []
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws(StoreError) -> T {
        do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
            throw .malformed(endpoint: "etcd", detail: "\(T.self): \(error) in \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
    }
}

/// etcd's KV, lease and watch calls over a transport, typed. Errors are `StoreError`s carrying etcd's words.
public struct EtcdClient: Sendable {
    public let transport: any EtcdTransport

    public init(transport: any EtcdTransport) { self.transport = transport }

    /// A client of the gateway at these `host:port` endpoints.
    public init(endpoints: [EtcdHTTPTransport.Endpoint]) {
        transport = EtcdHTTPTransport(endpoints: endpoints)
    }

    private func call<Request: Encodable, Response: Decodable>(_ path: String, _ request: Request, as: Response.Type) throws(StoreError)
        -> Response
    {
        try EtcdJSON.decode(Response.self, try transport.call(path, body: EtcdJSON.encode(request)))
    }

    private func send<Request: Encodable, Response: Decodable>(_ path: String, _ request: Request, as: Response.Type)
        async throws(StoreError)
        -> Response
    {
        try EtcdJSON.decode(Response.self, try await transport.send(path, body: EtcdJSON.encode(request)))
    }

    // MARK: KV

    /// A range; a read at a compacted `revision` fails as `compacted`.
    public func range(_ request: RangeRequest) throws(StoreError) -> RangeResponse {
        do { return try call("/v3/kv/range", request, as: RangeResponse.self) } catch {
            throw Self.compaction(error, requested: request.revision?.value ?? 0)
        }
    }

    public func put(_ request: PutRequest) throws(StoreError) -> PutResponse {
        try call("/v3/kv/put", request, as: PutResponse.self)
    }

    public func deleteRange(_ request: DeleteRangeRequest) throws(StoreError) -> DeleteRangeResponse {
        try call("/v3/kv/deleterange", request, as: DeleteRangeResponse.self)
    }

    public func txn(_ request: TxnRequest) throws(StoreError) -> TxnResponse {
        try call("/v3/kv/txn", request, as: TxnResponse.self)
    }

    public func txn(_ request: TxnRequest) async throws(StoreError) -> TxnResponse {
        try await send("/v3/kv/txn", request, as: TxnResponse.self)
    }

    /// Drops the history before `revision` (physically: the call returns once the space is reclaimable).
    public func compact(to revision: Int64) throws(StoreError) {
        _ = try call("/v3/kv/compaction", CompactionRequest(revision: EtcdInt(revision), physical: true), as: PutResponse.self)
    }

    /// The store's current revision (a count-only range on `key`).
    public func currentRevision(_ key: Data) throws(StoreError) -> Int64 {
        let r = try range(RangeRequest(key: key, countOnly: true))
        guard let revision = r.header?.revision?.value else {
            throw .malformed(endpoint: "etcd", detail: "range answer without a revision")
        }
        return revision
    }

    /// etcd says "mvcc: required revision has been compacted" with gRPC code 11 (OutOfRange).
    static func compaction(_ error: StoreError, requested: Int64) -> StoreError {
        if case .rejected(_, 11, let message) = error, message.contains("compacted") {
            return .compacted(requested: requested, compactRevision: 0)
        }
        return error
    }

    // MARK: leases

    public func grantLease(ttl: Int64) async throws(StoreError) -> (id: Int64, ttl: Int64) {
        let r = try await send("/v3/lease/grant", LeaseGrantRequest(TTL: EtcdInt(ttl)), as: LeaseGrantResponse.self)
        if let e = r.error, !e.isEmpty { throw .rejected(httpStatus: 200, grpcCode: 0, message: e) }
        guard let id = r.ID?.value, id != 0 else { throw .malformed(endpoint: "etcd", detail: "lease grant without an ID") }
        return (id, r.TTL?.value ?? ttl)
    }

    /// One renewal (the gateway's keepalive is a stream; one POST renews once). Returns the TTL left, 0 if the
    /// lease has expired.
    public func keepAlive(lease: Int64) async throws(StoreError) -> Int64 {
        let bytes = try await transport.send("/v3/lease/keepalive", body: EtcdJSON.encode(LeaseIDRequest(ID: EtcdInt(lease))))
        let message = try EtcdJSON.decode(StreamMessage<LeaseKeepAliveResponse>.self, Self.firstLine(bytes))
        if let e = message.error {
            if e.grpcCode == 14 { throw .unavailable(endpoint: "etcd", reason: e.text) }
            throw .rejected(httpStatus: e.http_code ?? 200, grpcCode: e.grpcCode, message: e.text)
        }
        return message.result?.TTL?.value ?? 0
    }

    public func revoke(lease: Int64) async throws(StoreError) {
        _ = try await send("/v3/lease/revoke", LeaseIDRequest(ID: EtcdInt(lease)), as: LeaseRevokeResponse.self)
    }

    static func firstLine(_ bytes: [UInt8]) -> [UInt8] {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return bytes }
        return Array(bytes[..<newline])
    }

    // MARK: watch

    /// A gateway watch: its messages, decoded. A stream error (`{"error": ...}`) ends it with that error.
    public func watch(_ request: WatchCreateRequest) -> AsyncThrowingStream<WatchResponse, any Error> {
        let lines = transport.stream("/v3/watch", body: EtcdJSON.encode(WatchRequest(create_request: request)))
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchResponse.self, throwing: (any Error).self)
        let pump = Task {
            do {
                for try await line in lines {
                    let message = try EtcdJSON.decode(StreamMessage<WatchResponse>.self, line)
                    if let e = message.error {
                        let error: StoreError =
                            e.grpcCode == 14
                            ? .unavailable(endpoint: "etcd", reason: e.text)
                            : .rejected(httpStatus: e.http_code ?? 200, grpcCode: e.grpcCode, message: e.text)
                        continuation.finish(throwing: error)
                        return
                    }
                    if let r = message.result { continuation.yield(r) }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in pump.cancel() }
        return stream
    }
}
