import Foundation

/// Debian's runc, driven through its command line with a state directory of the node's own
/// (`--root`): several nodes on one machine never see each other's containers, and everything
/// in it is this node's to clean up.
public struct Runc: Sendable, Equatable {
    public var binary: String
    public var root: String
    public init(binary: String = "runc", root: String) {
        self.binary = binary
        self.root = root
    }

    func argv(_ args: [String]) -> [String] { [binary, "--root", root] + args }

    /// Runs one verb to its end; a non-zero exit throws with what runc said.
    @discardableResult
    func call(_ args: [String]) throws(RuntimeError) -> String {
        let out = try Spawn.run(argv(args))
        guard out.state == .exited(0) else {
            throw .runc(verb: args.first ?? "", status: "\(out.state)", output: out.stderr.isEmpty ? out.stdout : out.stderr)
        }
        return out.stdout
    }

    /// The ids of every container in this root (`runc list -q`); none when the root does not exist yet.
    public func list() -> [String] {
        guard FileManager.default.fileExists(atPath: root), let text = try? call(["list", "-q"]) else { return [] }
        return text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    public func kill(_ id: String, signal: Int32) throws(RuntimeError) { try call(["kill", id, "\(signal)"]) }

    /// `runc delete --force`: kills what still runs, removes its state and cgroups.
    public func delete(_ id: String) throws(RuntimeError) { try call(["delete", "--force", id]) }

    // The same verbs for a running daemon, on a thread of their own: `runc delete` on a busy cgroup
    // can take seconds, and the cooperative pool (two threads on a 2-core node) also runs gossip,
    // the control session and the API.

    /// `runc kill` off the pool; false when runc refused (the container is gone or stopped).
    func killOffPool(_ id: String, signal: Int32) async -> Bool {
        let runc = self
        return await ExecSession.offThread { (try? runc.kill(id, signal: signal)) != nil }
    }

    /// `runc delete --force` off the pool; the error when runc refused.
    @discardableResult
    func deleteOffPool(_ id: String) async -> RuntimeError? {
        let runc = self
        return await ExecSession.offThread {
            do throws(RuntimeError) {
                try runc.delete(id)
                return nil
            } catch {
                return error
            }
        }
    }
}
