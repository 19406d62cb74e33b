import Foundation
import GRDB

/// Reads and writes inside one SQLite transaction (see `SQLiteClusterStore.write`/`read`).
struct SQLiteTransaction: StoreTransaction {
    let db: Database
    /// Collects what a write transaction changes for the store's watchers; nil on reads.
    let recorder: ChangeRecorder?

    init(db: Database, recorder: ChangeRecorder? = nil) {
        self.db = db
        self.recorder = recorder
    }

    private static func encode<T: Encodable>(_ value: T) throws(ClusterError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return String(decoding: try encoder.encode(value), as: UTF8.self) } catch {
            throw .storage("cannot encode \(T.self): \(error)")
        }
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws(ClusterError) -> T {
        do { return try JSONDecoder().decode(type, from: Data(text.utf8)) } catch {
            throw .storage("corrupt \(T.self) record in the cluster store: \(error)")
        }
    }

    private func run<R>(_ body: () throws -> R) throws(ClusterError) -> R {
        do { return try body() } catch let e as ClusterError { throw e } catch {
            throw .storage("cluster store: \(error)")
        }
    }

    // MARK: version index

    /// The last version index handed out (0 for a fresh store).
    public func currentIndex() throws(ClusterError) -> UInt64 { try value(UInt64.self, forKey: "index") ?? 0 }

    private func nextIndex() throws(ClusterError) -> UInt64 {
        let next = try currentIndex() + 1
        try setValue(next, forKey: "index")
        recorder?.index = next
        return next
    }

    // MARK: objects

    @discardableResult
    public func create<T: StoredObject>(_ object: T) throws(ClusterError) -> T {
        if try get(T.self, id: object.id) != nil { throw .idConflict(objectKind: T.objectKind, id: object.id) }
        if T.uniqueNames, try !rows(T.self, sql: "name = ?", [object.storeName]).isEmpty {
            throw .nameConflict(objectKind: T.objectKind, name: object.storeName)
        }
        var stored = object
        stored.version = try nextIndex()
        try put(stored, insert: true)
        recorder?.changes.append(T.storeChange(ObjectChange(action: .create, old: nil, new: stored, id: stored.id, index: stored.version)))
        return stored
    }

    /// Stores `object` if its `version` is the stored one; the stored copy gets a new version.
    @discardableResult
    public func update<T: StoredObject>(_ object: T) throws(ClusterError) -> T {
        guard let current = try get(T.self, id: object.id) else {
            throw .notFound(objectKind: T.objectKind, reference: object.id)
        }
        guard current.version == object.version else {
            throw .outOfSequence(objectKind: T.objectKind, id: object.id, expected: current.version, got: object.version)
        }
        if T.uniqueNames, object.storeName != current.storeName,
            try !rows(T.self, sql: "name = ? AND id != ?", [object.storeName, object.id]).isEmpty
        {
            throw .nameConflict(objectKind: T.objectKind, name: object.storeName)
        }
        var stored = object
        stored.version = try nextIndex()
        try put(stored, insert: false)
        recorder?.changes.append(
            T.storeChange(ObjectChange(action: .update, old: current, new: stored, id: stored.id, index: stored.version)))
        return stored
    }

    private func put<T: StoredObject>(_ object: T, insert: Bool) throws(ClusterError) {
        let json = try Self.encode(object)
        let sql =
            insert
            ? "INSERT INTO \(T.table) (name, version, service_id, node_id, data, id) VALUES (?, ?, ?, ?, ?, ?)"
            : "UPDATE \(T.table) SET name = ?, version = ?, service_id = ?, node_id = ?, data = ? WHERE id = ?"
        try run {
            try db.execute(
                sql: sql,
                arguments: [
                    object.storeName, Int64(bitPattern: object.version),
                    object.serviceIndex, object.nodeIndex, json, object.id,
                ])
        }
    }

    public func get<T: StoredObject>(_ type: T.Type, id: String) throws(ClusterError) -> T? {
        try rows(type, sql: "id = ?", [id]).first
    }

    /// Docker's lookup: exact ID, then exact name, then unique ID prefix.
    public func resolve<T: StoredObject>(_ type: T.Type, _ reference: String) throws(ClusterError) -> T {
        guard !reference.isEmpty else { throw .notFound(objectKind: T.objectKind, reference: reference) }
        if let exact = try get(type, id: reference) { return exact }
        let named = try rows(type, sql: "name = ?", [reference])
        if named.count == 1 { return named[0] }
        if named.count > 1 { throw .ambiguous(objectKind: T.objectKind, reference: reference, matches: named.count) }
        let prefixed = try rows(type, sql: "substr(id, 1, ?) = ?", [reference.utf8.count, reference])
        if prefixed.count == 1 { return prefixed[0] }
        if prefixed.count > 1 { throw .ambiguous(objectKind: T.objectKind, reference: reference, matches: prefixed.count) }
        throw .notFound(objectKind: T.objectKind, reference: reference)
    }

    /// All objects of a kind, ordered by ID.
    public func list<T: StoredObject>(_ type: T.Type) throws(ClusterError) -> [T] { try rows(type, sql: "1", []) }

    public func delete<T: StoredObject>(_ type: T.Type, id: String) throws(ClusterError) {
        // Read before it goes: watchers get the removed object (its name, for events) from the change.
        guard let old = try get(type, id: id) else { throw .notFound(objectKind: T.objectKind, reference: id) }
        try run { try db.execute(sql: "DELETE FROM \(T.table) WHERE id = ?", arguments: [id]) }
        let index = try nextIndex()
        recorder?.changes.append(T.storeChange(ObjectChange(action: .remove, old: old, new: nil, id: id, index: index)))
    }

    public func tasks(serviceID: String) throws(ClusterError) -> [ClusterTask] {
        try rows(ClusterTask.self, sql: "service_id = ?", [serviceID])
    }

    public func tasks(nodeID: String) throws(ClusterError) -> [ClusterTask] {
        try rows(ClusterTask.self, sql: "node_id = ?", [nodeID])
    }

    private func rows<T: StoredObject>(_ type: T.Type, sql condition: String, _ arguments: StatementArguments) throws(ClusterError) -> [T] {
        let texts = try run {
            try String.fetchAll(db, sql: "SELECT data FROM \(T.table) WHERE \(condition) ORDER BY id", arguments: arguments)
        }
        var out: [T] = []
        out.reserveCapacity(texts.count)
        for t in texts { out.append(try Self.decode(type, t)) }
        return out
    }

    // MARK: cluster-wide values

    public func value<T: Codable>(_ type: T.Type, forKey key: String) throws(ClusterError) -> T? {
        let text = try run { try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
        guard let text else { return nil }
        return try Self.decode(type, text)
    }

    public func setValue<T: Codable>(_ value: T, forKey key: String) throws(ClusterError) {
        let json = try Self.encode(value)
        try run {
            try db.execute(
                sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [key, json])
        }
        if key != "index" { recorder?.values.insert(key) }
    }

    /// Every cluster-wide value's key but the version counter's (a relist names them all).
    func valueKeys() throws(ClusterError) -> [String] {
        try run { try String.fetchAll(db, sql: "SELECT key FROM meta WHERE key != 'index' ORDER BY key") }
    }

    public func removeValue(forKey key: String) throws(ClusterError) {
        try run { try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [key]) }
        recorder?.values.insert(key)
    }
}
