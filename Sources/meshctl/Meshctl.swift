import ArgumentParser

@main
struct Meshctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshctl",
        abstract: "Client for meshd: drives a node's local API (swarm, node, service, network).",
        discussion: """
            meshctl talks to the local meshd daemon over its unix socket (-H or MESHD_HOST, default \
            unix:///run/meshd/meshd.sock). The daemon's API is a subset of the Docker Engine API, so the \
            docker CLI works against it too (DOCKER_HOST=unix://…).
            """,
        version: "meshctl 0.1.0",
        subcommands: [SwarmCommand.self, NodeCommand.self, NetworkCommand.self, ServiceCommand.self]
    )

    @OptionGroup var global: GlobalOptions
}
