import Foundation

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
    public static func run(_ argv: [String], stdin: String? = nil) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try locate(argv[0]))
        p.arguments = Array(argv.dropFirst())
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = stdin.map { _ in Pipe() }
        p.standardInput = input ?? FileHandle.nullDevice
        try p.run()
        if let input, let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try? input.fileHandleForWriting.close()
        }
        // Drain stderr on another thread so neither pipe can fill up and stall the child.
        let errData = UnsafeTransfer(Data())
        let errDone = DispatchSemaphore(value: 0)
        Thread {
            errData.value = err.fileHandleForReading.readDataToEndOfFile()
            errDone.signal()
        }.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        errDone.wait()
        return Output(
            status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.value, as: UTF8.self))
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
