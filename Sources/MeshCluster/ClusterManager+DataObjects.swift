import Foundation

/// Secrets and configs, with swarmkit's rules (`controlapi/secret.go`, `config.go`): a valid name, data
/// larger than 0 and under the kind's limit, names unique per kind (the store's name index), and after
/// creation only the labels may change.
extension ClusterManager {
    public mutating func createSecret(_ spec: DataObjectSpec, now: Date = Date()) throws(ClusterError) -> ClusterSecret {
        try Self.check(spec, kind: "secret", limit: ClusterSecret.maxSize, limitText: "500 KiB")
        return try store.create(ClusterSecret(id: ObjectID.make(), createdAt: now, updatedAt: now, spec: spec))
    }

    public mutating func createConfig(_ spec: DataObjectSpec, now: Date = Date()) throws(ClusterError) -> ClusterConfig {
        try Self.check(spec, kind: "config", limit: ClusterConfig.maxSize, limitText: "1000 KiB")
        return try store.create(ClusterConfig(id: ObjectID.make(), createdAt: now, updatedAt: now, spec: spec))
    }

    /// `spec` is the whole new spec, as the API sends it: anything but the labels differing is refused.
    public mutating func updateSecret(_ id: String, version: UInt64, spec: DataObjectSpec, now: Date = Date()) throws(ClusterError) {
        try store.write { tx throws(ClusterError) in
            guard var secret = try tx.get(ClusterSecret.self, id: id) else { throw .notFound(objectKind: "secret", reference: id) }
            try Self.checkLabelsOnly(spec, against: secret.spec, sentData: !spec.data.isEmpty)
            secret.version = version
            secret.spec.labels = spec.labels
            secret.updatedAt = now
            try tx.update(secret)
        }
    }

    public mutating func updateConfig(_ id: String, version: UInt64, spec: DataObjectSpec, now: Date = Date()) throws(ClusterError) {
        try store.write { tx throws(ClusterError) in
            guard var config = try tx.get(ClusterConfig.self, id: id) else { throw .notFound(objectKind: "config", reference: id) }
            try Self.checkLabelsOnly(spec, against: config.spec, sentData: true)
            config.version = version
            config.spec.labels = spec.labels
            config.updatedAt = now
            try tx.update(config)
        }
    }

    public mutating func removeSecret(_ id: String) throws(ClusterError) {
        try store.delete(ClusterSecret.self, id: id)
    }

    public mutating func removeConfig(_ id: String) throws(ClusterError) {
        try store.delete(ClusterConfig.self, id: id)
    }

    static func check(_ spec: DataObjectSpec, kind: String, limit: Int, limitText: String) throws(ClusterError) {
        guard DataObjectSpec.isValidName(spec.name) else { throw .invalidArgument(DataObjectSpec.nameRule) }
        guard !spec.data.isEmpty, spec.data.count < limit else {
            throw .invalidArgument("\(kind) data must be larger than 0 and less than \(limitText)")
        }
        if let t = spec.templating, !t.isEmpty, t != "golang" {
            throw .invalidArgument("templating driver \(t) is not supported (only golang)")
        }
    }

    /// A secret's data is never shown, so a client that fetched the spec sends none back (an update
    /// without data keeps it); a config's comes back with inspect and must be sent unchanged.
    static func checkLabelsOnly(_ new: DataObjectSpec, against old: DataObjectSpec, sentData: Bool) throws(ClusterError) {
        let sameData = !sentData || new.data == old.data
        guard new.name == old.name, sameData, (new.templating ?? "") == (old.templating ?? "") else {
            throw .invalidArgument("only updates to Labels are allowed")
        }
    }
}
