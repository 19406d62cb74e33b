import ArgumentParser
import Foundation
import MeshGossip

/// Runs one gossip node in the current network namespace: membership and tables on UDP+TCP,
/// events as JSON lines on stdout, simple commands on stdin. The real-socket tests run one of
/// these per namespace; the daemon will embed `GossipAgent` the same way.
struct Gossip: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one gossip node: events as JSON lines on stdout, commands on stdin.",
        discussion: """
            stdin commands, one per line: join-network NET | leave-network NET | set NET TABLE KEY VALUE |
            delete NET TABLE KEY | install-key HEX | use-key HEX | remove-key HEX | stats | entries NET | leave
            """)

    @Option(help: "Node name (unique in the cluster).") var name: String
    @Option(help: "IPv4 address to bind and advertise.") var bind: String
    @Option(help: "UDP and TCP port.") var port: UInt16 = 7946
    @Option(parsing: .singleValue, help: "host:port of a node to join through (repeatable).") var seed: [String] = []
    @Option(help: "File with hex AES keys (16, 24 or 32 bytes), one a line; the first is the primary.") var keyFile: String?
    @Option(help: "Cluster label: packets from another label are dropped.") var label = ""
    @Option(parsing: .singleValue, help: "Network to carry from the start (repeatable).") var network: [String] = []
    @Option(help: "Divide every protocol interval by this (tests only).") var speedup: Int = 1
    @Option(help: "Full-state push/pull interval in seconds (default 30, as memberlist).") var pushPull: Double?

    func run() async throws {
        var keyring: Keyring?
        if let keyFile {
            let lines = try String(contentsOfFile: keyFile, encoding: .utf8).split(whereSeparator: \.isNewline).map(String.init).filter {
                !$0.isEmpty
            }
            keyring = try Keyring(keys: try lines.map(Self.hex))
        }
        let seeds = try seed.map { s in
            guard let a = PeerAddress(hostPort: s) else { throw ValidationError("bad seed \(s)") }
            return a
        }
        var config = GossipConfig()
        if speedup > 1 { config = config.scaled(by: Int64(speedup)) }
        if let pushPull { config.pushPullInterval = .milliseconds(Int64(pushPull * 1000)) }
        // Seconds since the epoch: a restarted node always starts above its previous life.
        let incarnation = UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970))
        let agent = try GossipAgent(
            name: name, transport: TransportConfig(bindHost: bind, port: port), config: config,
            envelope: Envelope(label: label, keyring: keyring), incarnation: incarnation,
            seed: UInt64.random(in: 0...UInt64.max))
        let events = await agent.events()
        let printer = Task {
            for await e in events { Self.emit(Self.json(e)) }
        }
        try await agent.start()
        for n in network { await agent.joinNetwork(n) }
        if !seeds.isEmpty { await agent.join(seeds: seeds) }
        Self.emit(["event": "ready", "name": name, "incarnation": Int(incarnation)])

        for await line in Self.stdinLines() {
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let cmd = words.first else { continue }
            do {
                switch (cmd, words.count) {
                case ("join-network", 2): await agent.joinNetwork(words[1])
                case ("leave-network", 2): await agent.leaveNetwork(words[1])
                case ("set", 5): try await agent.set(network: words[1], table: words[2], key: words[3], value: Array(words[4].utf8))
                case ("delete", 4): try await agent.delete(network: words[1], table: words[2], key: words[3])
                case ("install-key", 2):
                    let k = try Self.hex(words[1])
                    try await agent.updateKeyring { try $0.install(k) }
                case ("use-key", 2):
                    let k = try Self.hex(words[1])
                    try await agent.updateKeyring { try $0.use(k) }
                case ("remove-key", 2):
                    let k = try Self.hex(words[1])
                    try await agent.updateKeyring { try $0.remove(k) }
                case ("stats", 1):
                    let s = await agent.stats
                    Self.emit([
                        "event": "stats", "packetsSent": s.packetsSent, "bytesSent": s.bytesSent, "packetsReceived": s.packetsReceived,
                        "streamsSent": s.streamsSent, "streamsReceived": s.streamsReceived,
                        "droppedUndecryptable": s.droppedUndecryptable, "droppedWrongLabel": s.droppedWrongLabel,
                        "droppedMalformed": s.droppedMalformed, "refutations": s.refutations,
                    ])
                case ("entries", 2):
                    let entries = await agent.entries(network: words[1])
                    Self.emit([
                        "event": "entries", "network": words[1], "count": entries.count,
                        "keys": entries.keys.sorted().map { "\($0.table)/\($0.key)" },
                    ])
                case ("leave", 1):
                    await agent.leave()
                    Self.emit(["event": "left"])
                    await agent.shutdown()
                    printer.cancel()
                    return
                default:
                    Self.emit(["event": "error", "message": "unknown command: \(line)"])
                    continue
                }
                Self.emit(["event": "ok", "command": cmd])
            } catch {
                Self.emit(["event": "error", "message": "\(cmd): \(error)"])
            }
        }
        // stdin closed: keep serving until killed (tests signal the process).
        while true { try await Task.sleep(for: .seconds(3600)) }
    }

    /// stdin, line by line, read on a thread of its own (blocking reads stay off the executor).
    static func stdinLines() -> AsyncStream<String> {
        let (stream, cont) = AsyncStream<String>.makeStream()
        Thread {
            while let line = readLine() { cont.yield(line) }
            cont.finish()
        }.start()
        return stream
    }

    static func hex(_ s: String) throws -> [UInt8] {
        guard s.utf8.count % 2 == 0 else { throw ValidationError("odd-length hex key") }
        guard let bytes = KeyHex.decode(s) else { throw ValidationError("bad hex key") }
        return bytes
    }

    static func json(_ e: GossipEvent) -> [String: Any] {
        switch e {
        case let .member(name, address, state, incarnation):
            return [
                "event": "member", "name": name, "address": address.description, "state": state.description,
                "incarnation": Int(incarnation),
            ]
        case let .table(c):
            return [
                "event": "table", "kind": c.kind.rawValue, "network": c.network, "table": c.table, "key": c.key,
                "owner": c.owner, "value": String(decoding: c.value, as: UTF8.self),
            ]
        case let .warning(w):
            return ["event": "warning", "message": w]
        }
    }

    static func emit(_ object: [String: Any]) {
        var o = object
        o["time"] = Date().timeIntervalSince1970
        guard let data = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
