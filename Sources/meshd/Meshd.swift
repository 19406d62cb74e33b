import ArgumentParser
import MeshKernel

@main
struct Meshd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshd",
        abstract: "meshd: routing mesh and overlay network daemon.",
        discussion: "The daemon and cluster subcommands arrive with their issue; `demo` runs what exists today.",
        version: "meshd \(MeshVersion.string)",
        subcommands: [Demo.self, Dataplane.self, Gossip.self, Whoami.self]
    )
}
