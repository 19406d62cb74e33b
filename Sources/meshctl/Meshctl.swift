import ArgumentParser

@main
struct Meshctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshctl",
        abstract: "Client for meshd: drives a node's local API (swarm, node, service, network).",
        discussion: """
            meshctl talks to the local meshd daemon over its unix socket (MESHD_HOST or -H). \
            The daemon's API is a subset of the Docker Engine API, so the docker CLI works too. \
            Cluster subcommands arrive with the manager; this build has none yet.
            """,
        version: "meshctl 0.1.0"
    )

    @Option(name: .shortAndLong, help: "Daemon socket, e.g. unix:///run/meshd/meshd.sock (default: $MESHD_HOST).")
    var host: String?

    func run() throws {
        throw ValidationError("no subcommand given; meshctl has no cluster commands yet (see --help)")
    }
}
