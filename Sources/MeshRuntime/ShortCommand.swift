#if canImport(Glibc)
    import Glibc
#endif

/// A short command run to its end, for tools outside the runtime (the testbed, the benches): the
/// same posix_spawn and wait-by-pid as the runtime's own runc verbs. Foundation's Process on Linux
/// lets one long-lived child hold up every other child's wait, and leaves zombies when a pid is
/// reaped behind its back; this one waits for its own pid only, so any number can run at once.
public enum ShortCommand {
    public struct Output: Sendable {
        /// The exit code, or the signal number when a signal ended it (as Foundation reported it).
        public var status: Int32
        public var signalled: Bool
        public var stdout: String
        public var stderr: String
    }

    /// Runs `argv` (argv[0] an absolute path or looked up in PATH) with `stdin`, if given, as its
    /// input, and returns what it printed whatever its exit status.
    public static func run(_ argv: [String], stdin: [UInt8]? = nil) throws(RuntimeError) -> Output {
        let o = try Spawn.run(argv, input: stdin)
        switch o.state {
        case .exited(let code): return Output(status: code, signalled: false, stdout: o.stdout, stderr: o.stderr)
        case .signalled(let signal): return Output(status: signal, signalled: true, stdout: o.stdout, stderr: o.stderr)
        case .running: return Output(status: -1, signalled: false, stdout: o.stdout, stderr: o.stderr)
        }
    }
}
