import Foundation
import MeshRuntime

/// Runs a tool (ip, bridge, ping, …) and captures what it printed. For tests, benches and the demo,
/// never for programming the kernel: that is MeshKernel's job.
public enum Exec {
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var succeeded: Bool { status == 0 }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let command: [String]
        public let output: Output
        public var description: String {
            "`\(command.joined(separator: " "))` exited \(output.status): \(output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
        }
    }

    /// Runs `argv` and returns its output whatever the exit status; `stdin` is written first if given.
    /// Spawned and waited for by pid (`ShortCommand`), so a long `docker service update` on one thread
    /// never holds up a `curl` on another, as Foundation's Process did.
    public static func run(_ argv: [String], stdin: String? = nil) throws -> Output {
        let path = try locate(argv[0])
        do {
            let o = try ShortCommand.run([path] + argv.dropFirst(), stdin: stdin.map { Array($0.utf8) })
            return Output(status: o.status, stdout: o.stdout, stderr: o.stderr)
        } catch {
            throw Failure(command: argv, output: Output(status: 127, stdout: "", stderr: "\(error)"))
        }
    }

    /// Runs `argv` and throws unless it exits 0.
    @discardableResult
    public static func check(_ argv: [String], stdin: String? = nil) throws -> String {
        let o = try run(argv, stdin: stdin)
        guard o.succeeded else { throw Failure(command: argv, output: o) }
        return o.stdout
    }

    /// Runs `argv` and parses its stdout as JSON (`ip -j …`, `bridge -j …`).
    public static func json(_ argv: [String]) throws -> Any {
        let text = try check(argv)
        return try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    static func locate(_ tool: String) throws -> String {
        if tool.hasPrefix("/") { return tool }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in (path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
            let candidate = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw Failure(command: [tool], output: Output(status: 127, stdout: "", stderr: "\(tool): not found in PATH"))
    }
}

/// Carries a value to a helper thread that the caller waits for.
final class UnsafeTransfer<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
