import Foundation
import MeshCluster
import MeshControl

/// What a node says about itself in `node ls`/`node inspect` (Docker's `Description`): sent with
/// its join request, recorded by the manager.
enum NodeFacts {
    static func platform() -> NodePlatform {
        var uts = utsname()
        uname(&uts)
        let machine = withUnsafeBytes(of: &uts.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return NodePlatform(
            architecture: machine.isEmpty ? "x86_64" : machine, cpus: ProcessInfo.processInfo.activeProcessorCount,
            memoryBytes: Int64(ProcessInfo.processInfo.physicalMemory), engineVersion: DaemonVersion.engine)
    }

    static func description(_ p: NodePlatform?) -> NodeDescription {
        guard let p else { return NodeDescription() }
        return NodeDescription(
            os: "linux", architecture: p.architecture, nanoCPUs: Int64(p.cpus) * 1_000_000_000,
            memoryBytes: p.memoryBytes, engineVersion: p.engineVersion)
    }

    static func local() -> NodeDescription { description(platform()) }
}
