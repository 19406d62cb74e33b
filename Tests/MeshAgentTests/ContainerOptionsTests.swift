import Foundation
import MeshControl
import MeshRuntime
import MeshValues
import Testing
@testable import MeshAgent

/// The task template's container fields as the agent hands them to the runtime.
@Suite struct ContainerOptionsTests {
    static let attachments: [NodeAssignment.Attachment] = []

    @Test func templateFieldsBecomeTheContainersOptions() throws {
        let t = NodeAssignment.LocalTask(
            id: "t0k3n", name: "redis.3.t0k3n", service: "s3rv", image: "redis:7", args: ["/entry", "redis-server", "--x"],
            attachments: Self.attachments,
            container: .init(
                serviceName: "redis", command: ["/entry"], args: ["redis-server", "--x"], user: "redis", dir: "/data",
                labels: ["a": "b"], stopSignal: "SIGQUIT", stopGraceNanos: 5_000_000_000, memoryBytes: 1 << 26, nanoCPUs: 0))
        let c = try NodeAgent.containerOptions(t)
        #expect(c.name == "redis.3.t0k3n" && c.serviceName == "redis" && c.slot == "3" && c.serviceID == "s3rv")
        #expect(c.command == ["/entry"] && c.args == ["redis-server", "--x"])
        #expect(c.user == "redis" && c.workdir == "/data" && c.hostname == nil && c.stopSignal == "SIGQUIT")
        #expect(c.labels == ["a": "b"])
        #expect(c.resources == TaskResources(memoryBytes: 1 << 26, nanoCPUs: nil), "0 is no limit")
    }

    /// From a manager that sends no container fields: the task's args are the container's Args.
    @Test func anOlderAssignmentStillDecodesAndMaps() throws {
        let t = NodeAssignment.LocalTask(id: "t1", name: "web.1.t1", service: "s", image: "nginx", args: ["nginx", "-g"], attachments: [])
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(t)) as! [String: Any]
        json["container"] = nil
        let old = try JSONDecoder().decode(NodeAssignment.LocalTask.self, from: JSONSerialization.data(withJSONObject: json))
        #expect(old == t && old.container == nil)
        let c = try NodeAgent.containerOptions(old)
        #expect(c.command.isEmpty && c.args == ["nginx", "-g"] && c.name == "web.1.t1")
    }

    /// Mounts, read-only root, capabilities, sysctls, groups and hosts reach the runtime; a mount
    /// kind a node cannot make fails the task by name instead of running without it.
    @Test func mountsAndSecurityFieldsReachTheRuntime() throws {
        var t = NodeAssignment.LocalTask(
            id: "t2", name: "db.1.t2", service: "s", image: "mariadb", args: [], attachments: [],
            container: .init(
                serviceName: "db",
                mounts: [
                    .init(type: "volume", source: "data", target: "/var/lib/mysql", noCopy: true),
                    .init(type: "tmpfs", source: "", target: "/scratch", tmpfsSizeBytes: 1 << 20),
                ], readOnly: true, capabilityAdd: ["CAP_NET_ADMIN"], capabilityDrop: ["CAP_MKNOD"], sysctls: ["net.core.somaxconn": "512"],
                groups: ["adm"], hosts: ["10.0.0.1 a"]))
        let c = try NodeAgent.containerOptions(t)
        #expect(
            c.mounts == [
                ContainerMount(kind: .volume, source: "data", target: "/var/lib/mysql", noCopy: true),
                ContainerMount(kind: .tmpfs, target: "/scratch", tmpfsSizeBytes: 1 << 20),
            ])
        #expect(c.readOnly && c.capabilityAdd == ["CAP_NET_ADMIN"] && c.capabilityDrop == ["CAP_MKNOD"])
        #expect(c.sysctls == ["net.core.somaxconn": "512"] && c.groups == ["adm"] && c.extraHosts == ["10.0.0.1 a"])
        t.container?.mounts = [.init(type: "npipe", source: "x", target: "/y")]
        #expect(throws: RuntimeError.self) { try NodeAgent.containerOptions(t) }
    }

    /// The image's HEALTHCHECK under the service's, as dockerd merges them.
    @Test func theImagesHealthcheckFillsWhatTheServiceLeftOut() {
        let image = HealthConfig(
            test: ["CMD", "ping"], intervalNanos: 5_000_000_000, timeoutNanos: 2_000_000_000, startPeriodNanos: 0, retries: 4)
        // None from the service: the image's whole.
        #expect(
            NodeAgent.effectiveHealthcheck(service: nil, image: image)
                == .init(test: ["CMD", "ping"], intervalNanos: 5_000_000_000, timeoutNanos: 2_000_000_000, retries: 4))
        // Fields only: the image's test and the fields the service left at zero.
        let tuned = NodeAgent.effectiveHealthcheck(service: .init(test: [], intervalNanos: 1_000_000_000), image: image)
        #expect(tuned == .init(test: ["CMD", "ping"], intervalNanos: 1_000_000_000, timeoutNanos: 2_000_000_000, retries: 4))
        // A test of its own keeps it; `--no-healthcheck` stays NONE (no check runs).
        #expect(NodeAgent.effectiveHealthcheck(service: .init(test: ["CMD", "true"]), image: image)?.test == ["CMD", "true"])
        #expect(NodeAgent.effectiveHealthcheck(service: .init(test: ["NONE"]), image: image)?.test == ["NONE"])
        // No image check: the service's as it is.
        #expect(NodeAgent.effectiveHealthcheck(service: nil, image: nil) == nil)
        #expect(NodeAgent.effectiveHealthcheck(service: .init(test: ["CMD", "x"]), image: nil) == .init(test: ["CMD", "x"]))
    }
}
