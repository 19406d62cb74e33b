import ArgumentParser
import MeshKernel

@main
struct Meshd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshd",
        abstract: "meshd: routing mesh and overlay network daemon.",
        discussion: "`daemon` runs a node; `meshd-demo` (its own executable) brings up a three-node cluster in namespaces on this machine.",
        version: "meshd \(MeshVersion.string)",
        subcommands: [DaemonCommand.self, Dataplane.self, Gossip.self, Whoami.self]
    )
}
