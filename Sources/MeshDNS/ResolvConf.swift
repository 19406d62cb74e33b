import Foundation

/// Reading the node's /etc/resolv.conf for upstreams, and writing a task's, which names only the
/// embedded server.
public enum ResolvConf {
    public static let embeddedServer = "127.0.0.11"
    /// glibc and musl read at most three nameservers; so does the forwarder.
    public static let maxNameservers = 3

    public struct Contents: Sendable, Equatable {
        public var nameservers: [String] = []
        public var search: [String] = []
        public var options: [String] = []
        public init(nameservers: [String] = [], search: [String] = [], options: [String] = []) {
            self.nameservers = nameservers
            self.search = search
            self.options = options
        }
    }

    public static func parse(_ text: String) -> Contents {
        var c = Contents()
        for raw in text.split(whereSeparator: \.isNewline) {
            let line: Substring = raw.prefix { $0 != "#" && $0 != ";" }
            let words: [String] = line.split(whereSeparator: { (c: Character) in c == " " || c == "\t" }).map { String($0) }
            guard let key = words.first else { continue }
            switch key {
            case "nameserver":
                // The embedded server itself is never an upstream: that would loop.
                if words.count >= 2, words[1] != embeddedServer, c.nameservers.count < maxNameservers {
                    c.nameservers.append(words[1])
                }
            case "search", "domain": c.search = Array(words.dropFirst())
            case "options": c.options += words.dropFirst()
            default: continue
            }
        }
        return c
    }

    public static func read(_ path: String = "/etc/resolv.conf") -> Contents {
        parse((try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }

    /// A task's resolv.conf: only the embedded server, keeping the node's search list and options
    /// (as Docker does), minus ndots from nowhere.
    public static func taskFile(node: Contents) -> String {
        var out = "# written by meshd: the embedded DNS server answers cluster names and forwards the rest\n"
        out += "nameserver \(embeddedServer)\n"
        if !node.search.isEmpty { out += "search \(node.search.joined(separator: " "))\n" }
        if !node.options.isEmpty { out += "options \(node.options.joined(separator: " "))\n" }
        return out
    }

    /// Writes the task's file atomically, creating its directory.
    public static func writeTaskFile(to path: String, node: Contents) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try taskFile(node: node).write(to: url, atomically: true, encoding: .utf8)
    }
}
