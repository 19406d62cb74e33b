import Foundation
import MeshCluster

/// One attempt at a store transaction on etcd, software-transactional-memory style (as etcd's own `stm.go`):
/// every read is served at one revision (the first read's) and remembered with the mod revision it saw; writes
/// are buffered (reads see them); `commitRequest` turns it all into ONE etcd txn whose compares fail if
/// anything read has changed since, so the txn commits exactly what the body computed or nothing.
///
/// Reads of single keys are compared on their exact mod revision (which also catches a deletion). A list
/// (a range) is compared as "no key in the range written after the read revision": that catches creations
/// and updates, but etcd has no compare for a deletion inside a range, so a list whose member is deleted
/// concurrently is not refused unless the body also read or wrote that member by key.
final class EtcdTransaction: StoreTransaction {
    /// The `version` of an object written in this transaction until it commits (the commit's revision is not
    /// known before); `EtcdClusterStore.write` replaces it in what the body returns.
    static let pendingVersion = UInt64.max

    private let client: EtcdClient
    private let keys: EtcdKeys
    private let writable: Bool
    /// The revision every read of this attempt is served at (set by the first read).
    private(set) var revision: Int64?

    private struct Read {
        var modRevision: Int64
        var value: Data?
    }

    private enum Write {
        case put(Data)
        case delete
    }

    /// Single keys read, with what was seen.
    private var reads: [Data: Read] = [:]
    /// Ranges listed: start → end.
    private var ranges: [Data: Data] = [:]
    private var writes: [Data: Write] = [:]
    private var writeOrder: [Data] = []

    init(client: EtcdClient, keys: EtcdKeys, writable: Bool) {
        self.client = client
        self.keys = keys
        self.writable = writable
    }

    var hasWrites: Bool { !writes.isEmpty }

    /// What this attempt wrote to objects, as the watch delivers it once the txn committed at `revision`
    /// (the store's cache takes it at once, ahead of the watch).
    func objectChanges(revision: Int64) -> [StoreChange] {
        writeOrder.compactMap { key -> StoreChange? in
            guard let write = writes[key] else { return nil }
            let at = KeyValue(key: key, mod_revision: EtcdInt(revision))
            switch write {
            case .put(let value):
                var kv = at
                kv.value = value
                return keys.change(kv: kv, prev: nil, delete: false, forceCreate: false)
            case .delete:
                return keys.change(kv: at, prev: nil, delete: true, forceCreate: false)
            }
        }
    }

    // MARK: raw keys

    private func fail(_ error: StoreError) -> ClusterError { .store(error) }

    /// A key's value as this transaction sees it (its own writes first).
    private func raw(_ key: Data) throws(ClusterError) -> Data? {
        if let w = writes[key] {
            if case .put(let v) = w { return v }
            return nil
        }
        if let r = reads[key] { return r.value }
        let answer: RangeResponse
        do { answer = try client.range(RangeRequest(key: key, revision: revision)) } catch { throw fail(error) }
        if revision == nil { revision = answer.header?.revision?.value }
        let kv = answer.kvs?.first
        reads[key] = Read(modRevision: kv?.modRevision ?? 0, value: kv.map { $0.value ?? Data() })
        return kv.map { $0.value ?? Data() }
    }

    /// Reads every key of `wanted` this transaction has not seen yet in ONE round trip (a read-only txn of
    /// ranges, which etcd serves atomically at one revision), so a create with a name and several claims costs
    /// one read, not one per key. A single key is left to `raw`.
    private func prefetch(_ wanted: [Data]) throws(ClusterError) {
        let missing = Set(wanted.filter { writes[$0] == nil && reads[$0] == nil }).sorted { $0.lexicographicallyPrecedes($1) }
        guard missing.count > 1 else { return }
        let answer: TxnResponse
        do {
            answer = try client.txn(TxnRequest(compare: [], success: missing.map { .range(RangeRequest(key: $0, revision: revision)) }))
        } catch {
            throw fail(EtcdClient.compaction(error, requested: revision ?? 0))
        }
        let responses = answer.responses ?? []
        guard responses.count == missing.count else {
            throw fail(.malformed(endpoint: "etcd", detail: "\(responses.count) answers to a read of \(missing.count) keys"))
        }
        if revision == nil { revision = answer.header?.revision?.value }
        for (key, r) in zip(missing, responses) {
            let kv = r.response_range?.kvs?.first
            reads[key] = Read(modRevision: kv?.modRevision ?? 0, value: kv.map { $0.value ?? Data() })
        }
    }

    /// The keys a write of `object` reads: the object's, its name claim's, its claims'.
    private func keysOf<T: StoredObject>(_ object: T) -> [Data] {
        [keys.object(T.self, id: object.id)] + (T.uniqueNames ? [keys.name(T.self, object.storeName)] : [])
            + object.storeClaims.map(keys.claim)
    }

    /// The mod revision of `key` as read (the transaction's pending version if it wrote it).
    private func modRevision(_ key: Data) -> UInt64? {
        if writes[key] != nil { return Self.pendingVersion }
        return reads[key].map { UInt64($0.modRevision) }
    }

    /// Every key under `prefix` with its value and version, merged with this transaction's writes, by key.
    private func rawList(_ prefix: Data) throws(ClusterError) -> [(key: Data, value: Data, version: UInt64)] {
        let end = EtcdKey.prefixEnd(prefix)
        let answer: RangeResponse
        do { answer = try client.range(RangeRequest(key: prefix, rangeEnd: end, revision: revision)) } catch { throw fail(error) }
        if revision == nil { revision = answer.header?.revision?.value }
        ranges[prefix] = end
        var merged: [Data: (Data, UInt64)] = [:]
        for kv in answer.kvs ?? [] { merged[kv.key] = (kv.value ?? Data(), UInt64(kv.modRevision)) }
        for (key, w) in writes where key.starts(with: prefix) {
            switch w {
            case .put(let v): merged[key] = (v, Self.pendingVersion)
            case .delete: merged[key] = nil
            }
        }
        return merged.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map { (key: $0.key, value: $0.value.0, version: $0.value.1) }
    }

    private func put(_ key: Data, _ value: Data) throws(ClusterError) {
        guard writable else { throw .storage("cluster store: write in a read-only transaction") }
        if writes[key] == nil { writeOrder.append(key) }
        writes[key] = .put(value)
    }

    private func remove(_ key: Data) throws(ClusterError) {
        guard writable else { throw .storage("cluster store: write in a read-only transaction") }
        if writes[key] == nil { writeOrder.append(key) }
        writes[key] = .delete
    }

    // MARK: encoding

    static func encode<T: Encodable>(_ value: T) throws(ClusterError) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return try encoder.encode(value) } catch { throw .storage("cannot encode \(T.self): \(error)") }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, key: String) throws(ClusterError) -> T {
        do { return try JSONDecoder().decode(type, from: data) } catch {
            throw .storage("corrupt \(T.self) record at \(key) in etcd: \(error)")
        }
    }

    /// An object as stored: its version is the key's mod revision.
    static func object<T: StoredObject>(_ type: T.Type, _ data: Data, version: UInt64, key: String) throws(ClusterError) -> T {
        var o = try decode(type, data, key: key)
        o.version = version
        return o
    }

    private static func stored<T: StoredObject>(_ object: T) throws(ClusterError) -> Data {
        // The version is the key's revision; the stored field would only go stale.
        var o = object
        o.version = 0
        return try encode(o)
    }

    // MARK: claims

    private func owner<T: StoredObject>(_ object: T) -> String { "\(T.objectKind)/\(object.id)" }

    private func claim(_ name: String, owner: String) throws(ClusterError) {
        let key = keys.claim(name)
        if let held = try raw(key) {
            let holder = String(decoding: held, as: UTF8.self)
            if holder != owner { throw .store(.claimed(claim: name, owner: holder)) }
            return
        }
        try put(key, Data(owner.utf8))
    }

    private func release(_ name: String, owner: String) throws(ClusterError) {
        let key = keys.claim(name)
        if let held = try raw(key), String(decoding: held, as: UTF8.self) == owner { try remove(key) }
    }

    private func claimName<T: StoredObject>(_ object: T) throws(ClusterError) {
        let key = keys.name(T.self, object.storeName)
        if let held = try raw(key) {
            if String(decoding: held, as: UTF8.self) != object.id { throw .nameConflict(objectKind: T.objectKind, name: object.storeName) }
            return
        }
        try put(key, Data(object.id.utf8))
    }

    private func releaseName<T: StoredObject>(_ object: T) throws(ClusterError) {
        let key = keys.name(T.self, object.storeName)
        if let held = try raw(key), String(decoding: held, as: UTF8.self) == object.id { try remove(key) }
    }

    // MARK: StoreTransaction

    func currentIndex() throws(ClusterError) -> UInt64 {
        if let revision { return UInt64(revision) }
        do { revision = try client.currentRevision(keys.all) } catch { throw fail(error) }
        return UInt64(revision ?? 0)
    }

    @discardableResult
    func create<T: StoredObject>(_ object: T) throws(ClusterError) -> T {
        try prefetch(keysOf(object))
        let key = keys.object(T.self, id: object.id)
        if try raw(key) != nil { throw .idConflict(objectKind: T.objectKind, id: object.id) }
        if T.uniqueNames { try claimName(object) }
        for c in object.storeClaims { try claim(c, owner: owner(object)) }
        try put(key, try Self.stored(object))
        var created = object
        created.version = Self.pendingVersion
        return created
    }

    @discardableResult
    func update<T: StoredObject>(_ object: T) throws(ClusterError) -> T {
        try prefetch(keysOf(object))
        guard let current = try get(T.self, id: object.id) else { throw .notFound(objectKind: T.objectKind, reference: object.id) }
        guard current.version == object.version else {
            throw .outOfSequence(objectKind: T.objectKind, id: object.id, expected: current.version, got: object.version)
        }
        if T.uniqueNames, current.storeName != object.storeName {
            try claimName(object)
            try releaseName(current)
        }
        let before = Set(current.storeClaims)
        let after = Set(object.storeClaims)
        for c in before.subtracting(after).sorted() { try release(c, owner: owner(object)) }
        for c in after.subtracting(before).sorted() { try claim(c, owner: owner(object)) }
        try put(keys.object(T.self, id: object.id), try Self.stored(object))
        var updated = object
        updated.version = Self.pendingVersion
        return updated
    }

    func get<T: StoredObject>(_ type: T.Type, id: String) throws(ClusterError) -> T? {
        let key = keys.object(T.self, id: id)
        guard let data = try raw(key), let version = modRevision(key) else { return nil }
        return try Self.object(type, data, version: version, key: keys.describe(key))
    }

    func resolve<T: StoredObject>(_ type: T.Type, _ reference: String) throws(ClusterError) -> T {
        guard !reference.isEmpty, !reference.contains("/") else { throw .notFound(objectKind: T.objectKind, reference: reference) }
        // The ID and the name in one round trip: most references are one or the other.
        try prefetch([keys.object(T.self, id: reference)] + (T.uniqueNames ? [keys.name(T.self, reference)] : []))
        if let exact = try get(type, id: reference) { return exact }
        if T.uniqueNames {
            if let id = try raw(keys.name(T.self, reference)), let named = try get(type, id: String(decoding: id, as: UTF8.self)) {
                return named
            }
        } else {
            let named = try list(type).filter { $0.storeName == reference }
            if named.count == 1 { return named[0] }
            if named.count > 1 { throw .ambiguous(objectKind: T.objectKind, reference: reference, matches: named.count) }
        }
        let prefixed = try rawList(keys.object(T.self, id: reference))
        if prefixed.count == 1 {
            return try Self.object(type, prefixed[0].value, version: prefixed[0].version, key: keys.describe(prefixed[0].key))
        }
        if prefixed.count > 1 { throw .ambiguous(objectKind: T.objectKind, reference: reference, matches: prefixed.count) }
        throw .notFound(objectKind: T.objectKind, reference: reference)
    }

    func list<T: StoredObject>(_ type: T.Type) throws(ClusterError) -> [T] {
        var out: [T] = []
        for kv in try rawList(keys.objects(T.self)) {
            out.append(try Self.object(type, kv.value, version: kv.version, key: keys.describe(kv.key)))
        }
        return out
    }

    func delete<T: StoredObject>(_ type: T.Type, id: String) throws(ClusterError) {
        guard let current = try get(type, id: id) else { throw .notFound(objectKind: T.objectKind, reference: id) }
        try prefetch(keysOf(current))
        if T.uniqueNames { try releaseName(current) }
        for c in current.storeClaims { try release(c, owner: owner(current)) }
        try remove(keys.object(T.self, id: id))
    }

    func tasks(serviceID: String) throws(ClusterError) -> [ClusterTask] {
        try list(ClusterTask.self).filter { $0.serviceID == serviceID }
    }

    func tasks(nodeID: String) throws(ClusterError) -> [ClusterTask] {
        try list(ClusterTask.self).filter { $0.nodeID == nodeID }
    }

    func value<T: Codable>(_ type: T.Type, forKey key: String) throws(ClusterError) -> T? {
        guard let data = try raw(keys.value(key)) else { return nil }
        return try Self.decode(type, data, key: "values/\(key)")
    }

    func setValue<T: Codable>(_ value: T, forKey key: String) throws(ClusterError) {
        try put(keys.value(key), try Self.encode(value))
    }

    func removeValue(forKey key: String) throws(ClusterError) {
        try remove(keys.value(key))
    }

    // MARK: commit

    /// The most operations etcd takes in one txn list (`--max-txn-ops`, 128 by default); the failure branch's
    /// diagnostic reads stay under it.
    static let maxFailureReads = 120

    /// The keys compared on their exact mod revision, in a stable order.
    var comparedKeys: [Data] { reads.keys.sorted { $0.lexicographicallyPrecedes($1) } }

    /// ONE txn: compares on everything read (and the fencing token), the buffered writes on success; on failure
    /// it reads back the fencing key and the compared keys so the caller can say which one moved.
    func commitRequest(fence: EtcdFence?) -> TxnRequest {
        var compare: [Compare] = []
        if let fence { compare.append(.createRevision(fence.key, is: fence.createRevision)) }
        for key in comparedKeys { compare.append(.modRevision(key, is: reads[key]!.modRevision)) }
        if let revision {
            for (start, end) in ranges.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                compare.append(.unchanged(start, rangeEnd: end, since: revision))
            }
        }
        let success: [RequestOp] = writeOrder.map { key in
            switch writes[key]! {
            case .put(let v): .put(PutRequest(key: key, value: v))
            case .delete: .delete(DeleteRangeRequest(key: key))
            }
        }
        var failure: [RequestOp] = []
        if let fence { failure.append(.range(RangeRequest(key: fence.key, keysOnly: true))) }
        for key in comparedKeys.prefix(Self.maxFailureReads) { failure.append(.range(RangeRequest(key: key, keysOnly: true))) }
        return TxnRequest(compare: compare, success: success, failure: failure)
    }

    /// Why a txn built by `commitRequest` failed: fenced (the leader key is not the one held), or the first
    /// compared key whose mod revision moved, or a listed range that was written to.
    func failure(of response: TxnResponse, fence: EtcdFence?) -> StoreError {
        var answers = (response.responses ?? []).map { $0.response_range?.kvs?.first }
        if let fence {
            let found = answers.isEmpty ? 0 : (answers.removeFirst()?.createRevision ?? 0)
            if found != fence.createRevision {
                return .fenced(leaderKey: keys.describe(fence.key), expected: fence.createRevision, found: found)
            }
        }
        for (key, kv) in zip(comparedKeys, answers) {
            let expected = reads[key]!.modRevision
            let found = kv?.modRevision ?? 0
            if expected != found { return .conflict(key: keys.describe(key), expected: expected, found: found) }
        }
        let listed = ranges.keys.map { keys.describe($0) }.sorted().joined(separator: ", ")
        return .conflict(key: listed.isEmpty ? "?" : listed + "*", expected: revision ?? 0, found: response.header?.revision?.value ?? 0)
    }
}

/// A leader's fencing token: its leader key and that key's create revision. Every write guarded by it fails
/// once the key is gone or belongs to another leader.
public struct EtcdFence: Sendable, Equatable {
    public var key: Data
    public var createRevision: Int64
    public init(key: Data, createRevision: Int64) {
        self.key = key
        self.createRevision = createRevision
    }
}
