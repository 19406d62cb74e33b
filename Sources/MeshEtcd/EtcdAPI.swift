import Foundation

// The messages of etcd's v3 API as its gRPC gateway speaks them (etcd 3.4, `/v3/...`): proto3 JSON with the
// fields' proto names, bytes in base64 (`Data`'s own Codable form), int64 values as strings, and every field
// that holds its default (false, 0, empty) left out, so every field a response may omit is optional here.

/// An int64 in the gateway's JSON: written as a string, read from a string or a number.
public struct EtcdInt: Codable, Sendable, Equatable, Hashable, ExpressibleByIntegerLiteral {
    public var value: Int64
    public init(_ value: Int64) { self.value = value }
    public init(integerLiteral value: Int64) { self.value = value }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let text = try? c.decode(String.self) {
            guard let v = Int64(text) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an int64: \(text)")
            }
            value = v
        } else {
            value = try c.decode(Int64.self)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(String(value))
    }
}

/// `cluster_id` and `member_id` (uint64, beyond int64) are not read: nothing here uses them.
public struct ResponseHeader: Codable, Sendable, Equatable {
    public var revision: EtcdInt?
    public var raft_term: EtcdInt?
}

public struct KeyValue: Codable, Sendable, Equatable {
    public var key: Data
    public var create_revision: EtcdInt?
    public var mod_revision: EtcdInt?
    public var version: EtcdInt?
    public var value: Data?
    public var lease: EtcdInt?

    public var modRevision: Int64 { mod_revision?.value ?? 0 }
    public var createRevision: Int64 { create_revision?.value ?? 0 }

    public init(
        key: Data, create_revision: EtcdInt? = nil, mod_revision: EtcdInt? = nil, version: EtcdInt? = nil, value: Data? = nil,
        lease: EtcdInt? = nil
    ) {
        self.key = key
        self.create_revision = create_revision
        self.mod_revision = mod_revision
        self.version = version
        self.value = value
        self.lease = lease
    }
}

public struct RangeRequest: Codable, Sendable, Equatable {
    public var key: Data
    public var range_end: Data?
    public var limit: EtcdInt?
    public var revision: EtcdInt?
    public var serializable: Bool?
    public var keys_only: Bool?
    public var count_only: Bool?
    /// Only keys created at or before this revision.
    public var max_create_revision: EtcdInt?

    public init(
        key: Data, rangeEnd: Data? = nil, revision: Int64? = nil, keysOnly: Bool = false, countOnly: Bool = false,
        limit: Int64? = nil, maxCreateRevision: Int64? = nil
    ) {
        self.key = key
        range_end = rangeEnd
        max_create_revision = maxCreateRevision.map { EtcdInt($0) }
        self.revision = revision.map { EtcdInt($0) }
        keys_only = keysOnly ? true : nil
        count_only = countOnly ? true : nil
        self.limit = limit.map { EtcdInt($0) }
    }
}

public struct RangeResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var kvs: [KeyValue]?
    public var more: Bool?
    public var count: EtcdInt?
}

public struct PutRequest: Codable, Sendable, Equatable {
    public var key: Data
    public var value: Data
    public var lease: EtcdInt?
    public var prev_kv: Bool?

    public init(key: Data, value: Data, lease: Int64? = nil) {
        self.key = key
        self.value = value
        self.lease = lease.map { EtcdInt($0) }
    }
}

public struct PutResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
}

public struct DeleteRangeRequest: Codable, Sendable, Equatable {
    public var key: Data
    public var range_end: Data?
    public init(key: Data, rangeEnd: Data? = nil) {
        self.key = key
        range_end = rangeEnd
    }
}

public struct DeleteRangeResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var deleted: EtcdInt?
}

/// One condition of a txn: `target` of the key (every key in `[key, range_end)` when given) compared to a value.
public struct Compare: Codable, Sendable, Equatable {
    public enum Result: String, Codable, Sendable { case EQUAL, GREATER, LESS, NOT_EQUAL }
    public enum Target: String, Codable, Sendable { case VERSION, CREATE, MOD, VALUE, LEASE }
    public var result: Result
    public var target: Target
    public var key: Data
    public var range_end: Data?
    public var version: EtcdInt?
    public var create_revision: EtcdInt?
    public var mod_revision: EtcdInt?
    public var value: Data?

    /// The key's mod revision is `revision` (0: the key does not exist).
    public static func modRevision(_ key: Data, is revision: Int64) -> Compare {
        Compare(result: .EQUAL, target: .MOD, key: key, mod_revision: EtcdInt(revision))
    }
    /// No key in `[key, rangeEnd)` was written after `revision` (creations and updates; etcd cannot compare
    /// on a deletion inside a range).
    public static func unchanged(_ key: Data, rangeEnd: Data, since revision: Int64) -> Compare {
        Compare(result: .LESS, target: .MOD, key: key, range_end: rangeEnd, mod_revision: EtcdInt(revision + 1))
    }
    /// The key was created at `revision` (0: it does not exist): a fencing token or a claim.
    public static func createRevision(_ key: Data, is revision: Int64) -> Compare {
        Compare(result: .EQUAL, target: .CREATE, key: key, create_revision: EtcdInt(revision))
    }
}

public struct RequestOp: Codable, Sendable, Equatable {
    public var request_range: RangeRequest?
    public var request_put: PutRequest?
    public var request_delete_range: DeleteRangeRequest?

    public static func range(_ r: RangeRequest) -> RequestOp { RequestOp(request_range: r) }
    public static func put(_ r: PutRequest) -> RequestOp { RequestOp(request_put: r) }
    public static func delete(_ r: DeleteRangeRequest) -> RequestOp { RequestOp(request_delete_range: r) }
}

public struct ResponseOp: Codable, Sendable, Equatable {
    public var response_range: RangeResponse?
    public var response_put: PutResponse?
    public var response_delete_range: DeleteRangeResponse?
}

public struct TxnRequest: Codable, Sendable, Equatable {
    public var compare: [Compare]
    public var success: [RequestOp]
    public var failure: [RequestOp]
    public init(compare: [Compare], success: [RequestOp], failure: [RequestOp] = []) {
        self.compare = compare
        self.success = success
        self.failure = failure
    }
}

public struct TxnResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    /// Absent when false (proto3): the compares failed and the failure ops ran.
    public var succeeded: Bool?
    public var responses: [ResponseOp]?
}

public struct CompactionRequest: Codable, Sendable, Equatable {
    public var revision: EtcdInt
    public var physical: Bool?
}

public struct WatchCreateRequest: Codable, Sendable, Equatable {
    public var key: Data
    public var range_end: Data?
    public var start_revision: EtcdInt?
    public var progress_notify: Bool?
    public var prev_kv: Bool?
}

public struct WatchRequest: Codable, Sendable, Equatable {
    public var create_request: WatchCreateRequest
}

public struct Event: Codable, Sendable, Equatable {
    /// Absent for PUT (the enum's 0).
    public enum Kind: String, Codable, Sendable { case PUT, DELETE }
    public var type: Kind?
    public var kv: KeyValue
    public var prev_kv: KeyValue?
    public var isDelete: Bool { type == .DELETE }
}

public struct WatchResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var watch_id: EtcdInt?
    public var created: Bool?
    public var canceled: Bool?
    public var compact_revision: EtcdInt?
    public var cancel_reason: String?
    public var events: [Event]?
}

/// The gateway's error object: in a non-200 answer's body (`error`, `code`, `message`), and inside a stream
/// (`{"error": {"grpc_code", "http_code", "message"}}`).
public struct GatewayError: Codable, Sendable, Equatable {
    public var error: String?
    public var code: Int?
    public var message: String?
    public var grpc_code: Int?
    public var http_code: Int?

    public var grpcCode: Int { grpc_code ?? code ?? 0 }
    public var text: String { message ?? error ?? "" }
}

/// One message of a gateway stream: a result or an error.
public struct StreamMessage<Result: Codable & Sendable>: Codable, Sendable {
    public var result: Result?
    public var error: GatewayError?
}

public struct LeaseGrantRequest: Codable, Sendable, Equatable {
    public var TTL: EtcdInt
    public var ID: EtcdInt?
}

public struct LeaseGrantResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var ID: EtcdInt?
    public var TTL: EtcdInt?
    public var error: String?
}

public struct LeaseIDRequest: Codable, Sendable, Equatable {
    public var ID: EtcdInt
}

public struct LeaseKeepAliveResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
    public var ID: EtcdInt?
    /// Absent or 0 once the lease has expired.
    public var TTL: EtcdInt?
}

public struct LeaseRevokeResponse: Codable, Sendable, Equatable {
    public var header: ResponseHeader?
}

/// Key arithmetic etcd's ranges need.
public enum EtcdKey {
    /// The end of the range holding every key that starts with `prefix`: the prefix with its last byte
    /// that is not 0xff incremented (etcd's `GetPrefixRangeEnd`).
    public static func prefixEnd(_ prefix: Data) -> Data {
        var bytes = [UInt8](prefix)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes)
            }
            bytes.removeLast()
        }
        // Every byte 0xff: the range is open-ended ("\0" means "to the end" to etcd).
        return Data([0])
    }
}
