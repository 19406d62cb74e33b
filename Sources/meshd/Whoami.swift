import ArgumentParser
import Foundation
import MeshKernel
import MeshWhoami

/// `meshd whoami`: the built-in HTTP test server (like jwilder/whoami) in the current namespace.
struct Whoami: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve HTTP answering \"I'm <name>\", the client's address and the request (a test backend).")

    @Option(help: "Port to listen on.") var port: UInt16 = 8000
    @Option(help: "Address to listen on.") var address = "0.0.0.0"
    @Option(help: "Name to answer with (default: the host name).") var name: String?

    func run() async throws {
        guard let ip = IPAddress(address) else { throw ValidationError("not an IP address: \(address)") }
        let server = try await WhoamiServer.start(name: name ?? ProcessInfo.processInfo.hostName, address: ip, port: port)
        // Written unbuffered: whoever started us waits for this line.
        FileHandle.standardOutput.write(Data("whoami \(server.name) listening on \(address):\(server.port)\n".utf8))
        try await server.wait()
    }
}
