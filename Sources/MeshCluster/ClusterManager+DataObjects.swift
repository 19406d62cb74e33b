import Foundation

/// Secrets and configs, with swarmkit's rules (`controlapi/secret.go`, `config.go`): a valid name, data
/// larger than 0 and under the kind's limit, names unique per kind (the store's name index), and after
/// creation only the labels may change.
extension ClusterManager {
    public mutating func createData<T: DataObject>(_ type: T.Type, _ spec: DataObjectSpec, now: Date = Date()) throws(ClusterError) -> T {
        guard DataObjectSpec.isValidName(spec.name) else { throw .invalidArgument(DataObjectSpec.nameRule) }
        guard !spec.data.isEmpty, spec.data.count < T.maxSize else {
            throw .invalidArgument("\(T.objectKind) data must be larger than 0 and less than \(T.maxSizeText)")
        }
        if let t = spec.templating, !t.isEmpty, t != "golang" {
            throw .invalidArgument("templating driver \(t) is not supported (only golang)")
        }
        var stored = spec
        if T.sealsData { stored.data = secretSealing.seal(spec.data) }
        var created = try store.create(T(id: ObjectID.make(), version: 0, createdAt: now, updatedAt: now, spec: stored))
        // The caller gets what it sent, not the sealed bytes.
        created.spec.data = spec.data
        return created
    }

    /// `spec` is the whole new spec, as the API sends it: anything but the labels differing is refused.
    public mutating func updateData<T: DataObject>(
        _ type: T.Type, _ id: String, version: UInt64, spec: DataObjectSpec, now: Date = Date()
    ) throws(ClusterError) {
        let sealing = secretSealing
        try store.write { tx throws(ClusterError) in
            guard var object = try tx.get(T.self, id: id) else { throw .notFound(objectKind: T.objectKind, reference: id) }
            let old = object.spec
            let oldData = T.sealsData ? try sealing.open(old.data) : old.data
            let sameData = (!T.showsData && spec.data.isEmpty) || spec.data == oldData
            guard spec.name == old.name, sameData, (spec.templating ?? "") == (old.templating ?? "") else {
                throw .invalidArgument("only updates to Labels are allowed")
            }
            object.version = version
            object.spec.labels = spec.labels
            object.updatedAt = now
            try tx.update(object)
        }
    }

    /// Refused while a service refers to it (swarmkit: "secret 'x' is in use by the following service: y").
    public mutating func removeData<T: DataObject>(_ type: T.Type, id: String) throws(ClusterError) {
        try store.write { tx throws(ClusterError) in
            guard let object = try tx.get(T.self, id: id) else { throw .notFound(objectKind: T.objectKind, reference: id) }
            let users = try tx.list(ClusterService.self).filter { s in
                let c = s.spec.task.container
                return ((T.objectKind == "secret" ? c.secrets : c.configs) ?? []).contains { $0.id == id }
            }
            if !users.isEmpty {
                let names = users.map(\.spec.name).sorted().joined(separator: ", ")
                throw .invalidArgument(
                    "\(T.objectKind) '\(object.spec.name)' is in use by the following service\(users.count > 1 ? "s" : ""): \(names)")
            }
            try tx.delete(T.self, id: id)
        }
    }
}
