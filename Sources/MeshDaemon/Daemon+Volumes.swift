import Foundation
import MeshAPI
import MeshRuntime

/// `docker volume …` on this node: its `local` volumes under the data root, the same ones its
/// containers mount (`LocalVolumes`), in or out of a swarm.
extension Daemon {
    var localVolumes: LocalVolumes { LocalVolumes(dataRoot: options.dataRoot) }

    func resource(_ v: LocalVolumes.Volume) -> VolumeResource {
        VolumeResource(
            CreatedAt: v.createdAt, Labels: v.labels, Mountpoint: localVolumes.dataPath(v.name), Name: v.name, Options: v.options)
    }

    public func listVolumes() async throws(EngineError) -> [VolumeResource] { localVolumes.list().map(resource) }

    public func createVolume(name: String, labels: [String: String]) async throws(EngineError) -> VolumeResource {
        let chosen = name.isEmpty ? (0..<4).map { _ in String(format: "%016llx", UInt64.random(in: 0...UInt64.max)) }.joined() : name
        do {
            try secureDataRoot()
            // Creating one that exists returns it, as dockerd's local driver does. A nameless one is named at
            // random but kept like any other: only a task's unnamed mounts go with the task.
            return resource(try localVolumes.create(chosen, labels: labels).volume)
        } catch let e as LocalVolumes.Failure {
            if case .invalidName = e { throw .invalidArgument("create \(chosen): \(e.description)") }
            throw .internalError(e.description)
        } catch {
            throw .internalError("\(error)")
        }
    }

    public func inspectVolume(_ name: String) async throws(EngineError) -> VolumeResource {
        guard let v = localVolumes.inspect(name) else { throw .notFound("get \(name): no such volume") }
        return resource(v)
    }

    public func removeVolume(_ name: String, force: Bool) async throws(EngineError) {
        guard localVolumes.inspect(name) != nil else {
            if force { return }
            throw .notFound("get \(name): no such volume")
        }
        do {
            if let containers = await node?.runtime.containers {
                try await containers.removeVolume(name)
            } else {
                try localVolumes.remove(name)
            }
        } catch let e as OCIDriverCore.VolumeRemoval {
            switch e {
            case .inUse(let users): throw .conflict("remove \(name): volume is in use - [\(users.joined(separator: ", "))]")
            case .failed(let f): throw .internalError(f.description)
            }
        } catch {
            throw .internalError("\(error)")
        }
    }
}
