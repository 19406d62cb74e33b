import Foundation
import MeshAgent
import MeshAPI
import MeshCluster

/// Store changes → `docker events` messages, as dockerd's manager turns swarmkit's store watch into
/// events (moby `daemon/events.go`, `generateClusterEvent`): type `service`, `node`, `network`, `secret` or `config`,
/// action `create`/`update`/`remove`, scope `swarm`, `name` in the attributes, and on updates the
/// `.old`/`.new` pairs dockerd reports.
///
/// Choices where meshd differs from swarmkit:
/// - Tasks give no event. dockerd emits none for tasks either: task state shows up only as `container`
///   events, from the engine on the node that runs the container, about a container `docker inspect`
///   can then read. meshd's tasks are not engine containers, so any `container` event would name an
///   object no docker command can show.
/// - The time of every event is the commit's (swarmkit uses `Meta.CreatedAt`/`UpdatedAt` for create and
///   update, the current time for remove); one clock keeps the log in time order, which `since` needs.
/// - A write that changed nothing but the version and update time gives no event: it is not a change;
///   nor does one that changed only a service's `rollout` bookkeeping (swarmkit's updater keeps that
///   outside the store).
/// - `leader.old/new` never appear: meshd has one manager, which is always the leader.
public enum EventTranslator {
    public static func events(_ commit: StoreCommit) -> [EventMessage] {
        let time = EventMessage.nanoseconds(commit.time)
        return commit.changes.flatMap { events($0, timeNano: time) }
    }

    public static func events(_ change: StoreChange, timeNano: Int64) -> [EventMessage] {
        switch change {
        case .service(let c):
            guard let event = service(c) else { return [] }
            return [message("service", c, event.name, event.attributes, timeNano)]
        case .node(let c):
            guard let event = node(c) else { return [] }
            return [message("node", c, event.name, event.attributes, timeNano)]
        case .network(let c):
            guard let current = c.new ?? c.old, c.action != .update || changed(c) else { return [] }
            return [message("network", c, current.name, [:], timeNano)]
        case .task:
            return []
        case .secret(let c):
            // dockerd's `logSecretEvent`/`logConfigEvent`: the name, nothing of the data.
            guard let current = c.new ?? c.old, c.action != .update || changed(c) else { return [] }
            return [message("secret", c, current.spec.name, [:], timeNano)]
        case .config(let c):
            guard let current = c.new ?? c.old, c.action != .update || changed(c) else { return [] }
            return [message("config", c, current.spec.name, [:], timeNano)]
        }
    }

    /// dockerd's container events: the container's id (`NodeContainers.id`), its labels, name and
    /// image as attributes, and the event's own (`exitCode`, `signal`).
    static func container(_ e: ContainerEvent, now: Date = Date()) -> EventMessage {
        var attributes = e.subject.labels
        attributes["name"] = e.subject.name
        attributes["image"] = e.subject.image
        attributes.merge(e.attributes) { _, own in own }
        return EventMessage(
            type: "container", action: e.action, actor: .init(ID: NodeContainers.id(e.subject.name), Attributes: attributes),
            scope: "local", timeNano: Int64(now.timeIntervalSince1970 * 1e9))
    }

    static func message<T: StoredObject>(
        _ type: String, _ c: ObjectChange<T>, _ name: String, _ attributes: [String: String], _ timeNano: Int64
    ) -> EventMessage {
        var attributes = attributes
        attributes["name"] = name
        return EventMessage(
            type: type, action: c.action.rawValue, actor: .init(ID: c.id, Attributes: attributes), scope: "swarm",
            timeNano: timeNano)
    }

    /// Equal apart from what every write changes.
    static func changed<T: StoredObject>(_ c: ObjectChange<T>) -> Bool {
        guard var old = c.old, var new = c.new else { return true }
        old.version = 0
        new.version = 0
        old.updatedAt = .distantPast
        new.updatedAt = .distantPast
        return old != new
    }

    /// dockerd's `logServiceEvent`: image, replicas and update state changes.
    static func service(_ c: ObjectChange<ClusterService>) -> (name: String, attributes: [String: String])? {
        guard let current = c.new ?? c.old else { return nil }
        var a: [String: String] = [:]
        if c.action == .update, var old = c.old, var new = c.new {
            // `rollout` is meshd's bookkeeping of a rolling update's batches, kept in the service so a
            // restarted manager resumes it; swarmkit keeps it in its updater, so its writes are no event.
            old.rollout = nil
            new.rollout = nil
            guard changed(ObjectChange(action: .update, old: old, new: new, id: c.id, index: c.index)) else { return nil }
            if old.spec.task.image != new.spec.task.image {
                a["image.old"] = old.spec.task.image
                a["image.new"] = new.spec.task.image
            }
            if let before = old.spec.mode.replicas, let after = new.spec.mode.replicas, before != after {
                a["replicas.old"] = String(before)
                a["replicas.new"] = String(after)
            }
            if let state = new.updateStatus?.state {
                if let was = old.updateStatus?.state {
                    if was != state {
                        a["updatestate.old"] = was.rawValue
                        a["updatestate.new"] = state.rawValue
                    }
                } else {
                    a["updatestate.new"] = state.rawValue
                }
            }
        }
        return (current.spec.name, a)
    }

    /// dockerd's `logNodeEvent`: availability, role, state and (between two manager states) reachability.
    static func node(_ c: ObjectChange<ClusterNode>) -> (name: String, attributes: [String: String])? {
        guard let current = c.new ?? c.old else { return nil }
        var a: [String: String] = [:]
        if c.action == .update, let old = c.old, let new = c.new {
            guard changed(c) else { return nil }
            if old.availability != new.availability {
                a["availability.old"] = old.availability.rawValue
                a["availability.new"] = new.availability.rawValue
            }
            if old.role != new.role {
                a["role.old"] = old.role.rawValue
                a["role.new"] = new.role.rawValue
            }
            if old.state != new.state {
                a["state.old"] = old.state.rawValue
                a["state.new"] = new.state.rawValue
            }
            // swarmkit compares ManagerStatus only when the node was and is a manager; meshd's
            // reachability is what `node ls` shows (APIMapping.node): unreachable when down.
            if old.role == .manager, new.role == .manager {
                let before = reachability(old), after = reachability(new)
                if before != after {
                    a["reachability.old"] = before
                    a["reachability.new"] = after
                }
            }
        }
        // swarmkit's `Spec.Annotations.Name` is empty unless set; meshd keeps no node names, so dockerd's
        // fallback, the hostname, is the name.
        return (current.hostname, a)
    }

    static func reachability(_ n: ClusterNode) -> String { n.state == .down ? "unreachable" : "reachable" }
}
