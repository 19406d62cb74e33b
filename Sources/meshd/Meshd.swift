import ArgumentParser
import MeshKernel

@main
struct Meshd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshd",
        abstract: "meshd: routing mesh and overlay network daemon.",
        discussion: "The daemon, cluster and dataplane subcommands arrive with their issues; `demo` runs what exists today.",
        version: "meshd \(MeshVersion.string)",
        subcommands: [Demo.self, Gossip.self, Whoami.self]
    )
}
