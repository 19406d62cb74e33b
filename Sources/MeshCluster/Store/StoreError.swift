/// Why a store backend that lives elsewhere (etcd) refused or could not serve a call, with what it said. The
/// embedded SQLite store fails only with `ClusterError.storage`; a shared store has more ways to fail, and
/// callers act differently on each (retry on `conflict`, step down on `fenced`, relist on `compacted`, wait on
/// `unavailable`), so they are told apart by case rather than by text.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A key this transaction read changed before it could commit, and it kept changing through the retries.
    /// Revisions are the key's mod revision then and now (0: absent).
    case conflict(key: String, expected: Int64, found: Int64)
    /// The fencing compare failed: the leader key this writer held is gone or was created again by another
    /// leader (`found` is its create revision now, 0 if it is gone). Nothing was written.
    case fenced(leaderKey: String, expected: Int64, found: Int64)
    /// A claim key (an address, subnet, VNI, published port) is held by another object.
    case claimed(claim: String, owner: String)
    /// The history asked for was compacted away; etcd keeps it from `compactRevision` on.
    case compacted(requested: Int64, compactRevision: Int64)
    /// No endpoint answered, or the one that did has no leader (gRPC code 14) or timed out.
    case unavailable(endpoint: String, reason: String)
    /// The backend answered with an error (HTTP status, gRPC code, its message), e.g. too many operations in
    /// one transaction.
    case rejected(httpStatus: Int, grpcCode: Int, message: String)
    /// An answer that does not decode as the API says it should.
    case malformed(endpoint: String, detail: String)

    public var description: String {
        switch self {
        case .conflict(let k, let e, let f): "store conflict: \(k) changed (mod revision \(e), now \(f))"
        case .fenced(let k, let e, let f):
            "store write fenced: leader key \(k) was created at revision \(e), now \(f == 0 ? "absent" : "at \(f)")"
        case .claimed(let c, let o): "\(c) is already owned by \(o)"
        case .compacted(let r, let c): "store revision \(r) was compacted (history starts at \(c))"
        case .unavailable(let e, let r): "store unavailable at \(e): \(r)"
        case .rejected(let s, let c, let m): "store refused the request (HTTP \(s), code \(c)): \(m)"
        case .malformed(let e, let d): "store answer from \(e) is malformed: \(d)"
        }
    }
}
