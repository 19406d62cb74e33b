import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Whether a task has started taking connections, read from its namespace's socket tables. With
/// no health checks to ask, a task whose process listens is ready for its balancers; one that
/// never listens (a `sleep`, a client) is let in after the agent's settle time instead.
public enum TaskReadiness {
    /// 127.0.0.11 as /proc/net prints it: the embedded DNS server's sockets in every task
    /// namespace are the daemon's, not the task's.
    static let embeddedDNS = "0B00007F"

    /// True once `pid` is inside the namespace mounted at `namespacePath` and that namespace has
    /// a TCP listener or a bound UDP socket that is not the embedded DNS server's.
    public static func isListening(pid: pid_t, namespacePath: String) -> Bool {
        // The task's first process is `ip netns exec`: until it has entered the namespace, its
        // /proc/<pid>/net shows the node's sockets (the daemon's own listeners among them).
        var link = [CChar](repeating: 0, count: 64)
        let n = readlink("/proc/\(pid)/ns/net", &link, link.count - 1)
        guard n > 0 else { return false }
        var st = stat()
        guard stat(namespacePath, &st) == 0,
            String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == "net:[\(st.st_ino)]"
        else { return false }
        for file in ["tcp", "tcp6"] where hasSocket(in: "/proc/\(pid)/net/\(file)", state: "0A") { return true }
        for file in ["udp", "udp6"] where hasSocket(in: "/proc/\(pid)/net/\(file)", state: nil) { return true }
        return false
    }

    /// A line of /proc/net/{tcp,udp}[6]: "sl local_address rem_address st …", addresses as
    /// HEXADDR:HEXPORT. `state` nil: any socket.
    static func hasSocket(in path: String, state: String?) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return false }
        return text.split(separator: "\n").dropFirst().contains { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3 else { return false }
            if let state, fields[3] != state { return false }
            return !fields[1].hasPrefix(embeddedDNS + ":") && !fields[1].hasPrefix("0000000000000000FFFF0000" + embeddedDNS + ":")
        }
    }
}
