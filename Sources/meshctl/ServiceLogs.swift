import ArgumentParser
import Foundation
import MeshAPI

struct ServiceLogs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Fetch the logs of a service.")
    @OptionGroup var global: GlobalOptions
    @Flag(name: .shortAndLong, help: "Follow log output.") var follow = false
    @Flag(name: .shortAndLong, help: "Show timestamps.") var timestamps = false
    @Option(name: [.customShort("n"), .long], help: "Number of lines to show from the end of the logs.") var tail = "all"
    @Flag(help: "Do not neatly format logs.") var raw = false
    @Argument var service: String

    func run() async throws {
        try await reporting {
            let client = try global.client()
            let svc = try await client.get(Service.self, apiPath("services", service), query: [("insertDefaults", "false")])
            // Task and node names are read up front so that lines can be printed as they arrive.
            let tasks = try await client.get([SwarmTask].self, "/tasks", query: [("filters", EngineClient.filters(["service": [svc.ID]]))])
            let nodes = try await client.get([Node].self, "/nodes")
            let hostnames = Dictionary(nodes.map { ($0.ID, $0.Description.Hostname) }, uniquingKeysWith: { a, _ in a })
            let contexts = Dictionary(
                tasks.map { t in
                    (
                        t.ID,
                        "\(svc.Spec.Name ?? svc.ID).\(t.Slot == 0 ? t.NodeID : String(t.Slot)).\(t.ID.prefix(12))@\(hostnames[t.NodeID] ?? t.NodeID)"
                    )
                }, uniquingKeysWith: { a, _ in a })
            var query = [("details", raw ? "0" : "1"), ("stderr", "1"), ("stdout", "1"), ("tail", tail)]
            if follow { query.append(("follow", "1")) }
            if timestamps { query.append(("timestamps", "1")) }
            let printer = LogPrinter(contexts: contexts, raw: raw, timestamps: timestamps)
            let response = try await client.send(.GET, apiPath("services", svc.ID, "logs"), query: query) { printer.add($0) }
            guard response.status < 400 else { throw EngineClient.error(from: response) }
            try printer.finish()
        }
    }
}

/// Decodes frames as the body arrives (on a NIO thread) and prints each line at once.
final class LogPrinter: @unchecked Sendable {
    private let lock = NSLock()
    private var decoder = LogStreamDecoder()
    private var failure: LogStreamDecoder.Failure?
    let contexts: [String: String]
    let raw: Bool
    let timestamps: Bool

    init(contexts: [String: String], raw: Bool, timestamps: Bool) {
        self.contexts = contexts
        self.raw = raw
        self.timestamps = timestamps
    }

    func add(_ bytes: [UInt8]) {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil else { return }
        do {
            for frame in try decoder.feed(bytes) {
                var text = String(decoding: frame.payload, as: UTF8.self)
                if text.hasSuffix("\n") { text.removeLast() }
                if !raw { text = decorate(text) }
                (frame.stream == 2 ? FileHandle.standardError : FileHandle.standardOutput).write(Data((text + "\n").utf8))
            }
        } catch {
            failure = error
        }
    }

    func finish() throws {
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw EngineClientError.badAnswer("bad log stream: \(failure)") }
    }

    /// `[timestamp ]details message` → `[timestamp ]name.slot.task@node    | message`.
    func decorate(_ line: String) -> String {
        var parts = line.split(separator: " ", maxSplits: timestamps ? 2 : 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == (timestamps ? 3 : 2) else { return line }
        var attrs: [String: String] = [:]
        for pair in parts[timestamps ? 1 : 0].split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            if kv.count == 2 { attrs[kv[0]] = kv[1] }
        }
        let taskID = attrs["com.docker.swarm.task.id"] ?? ""
        let context = contexts[taskID] ?? "\(taskID.prefix(12))@\(attrs["com.docker.swarm.node.id"]?.prefix(12) ?? "?")"
        let message = parts.removeLast()
        return "\(timestamps ? parts[0] + " " : "")\(context)    | \(message)"
    }
}
