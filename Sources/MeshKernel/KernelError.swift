#if canImport(Glibc)
    import Glibc
#endif

/// A kernel or libc errno. Kept as its own type so it is never confused with a libnl code
/// (libnl's `NLE_EXIST` is 6, the kernel's `EEXIST` is 17).
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static var current: Errno { Errno(errno) }

    public static let notPermitted = Errno(EPERM)
    public static let noEntry = Errno(ENOENT)
    public static let exists = Errno(EEXIST)
    public static let noDevice = Errno(ENODEV)
    public static let invalidArgument = Errno(EINVAL)
    public static let outOfRange = Errno(ERANGE)
    public static let busy = Errno(EBUSY)
    public static let wouldBlock = Errno(EAGAIN)
    public static let noBufferSpace = Errno(ENOBUFS)
    public static let notSupported = Errno(EOPNOTSUPP)
    public static let addressNotAvailable = Errno(EADDRNOTAVAIL)

    public var description: String {
        guard let text = strerror(rawValue) else { return "errno \(rawValue)" }
        return "\(String(cString: text)) (errno \(rawValue))"
    }
}

/// Every failure MeshKernel reports. Each case says what was being done, so an error that
/// surfaces three layers up still names the object.
public enum KernelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kernel refused a netlink request: errno from `nlmsgerr`, plus the extended-ack text
    /// and the offset of the offending attribute when the kernel supplied them.
    case kernel(operation: String, errno: Errno, message: String?)
    /// libnl refused to build or send something; `code` is a positive `NLE_*` number.
    case libnl(operation: String, code: Int32, text: String)
    /// A plain system call failed (socket, setns, mount, open of a sysctl, ...).
    case system(call: String, errno: Errno)
    /// No reply within the socket's receive timeout.
    case timeout(operation: String)
    /// The kernel marked a dump NLM_F_DUMP_INTR on every retry: the table kept changing under us.
    case dumpInterrupted(operation: String)
    /// The kernel's reply did not parse.
    case malformedReply(operation: String, detail: String)
    /// The caller asked for something that cannot be encoded (checked before anything is sent).
    case invalidArgument(String)
    /// Some requests of a pipelined batch failed; the others were applied (rtnetlink has no transactions).
    case batch(failures: [BatchFailure], applied: Int)
    /// An nftables transaction was refused and rolled back: nothing of it was applied.
    /// `index` in each failure is the position of the operation in the batch.
    case transaction(failures: [BatchFailure], operations: Int)

    public struct BatchFailure: Sendable, Equatable, CustomStringConvertible {
        public let index: Int
        public let error: KernelError
        public var description: String { "#\(index): \(error)" }
    }

    /// The kernel errno, if the kernel (or a syscall) produced this error.
    public var errno: Errno? {
        switch self {
        case .kernel(_, let e, _), .system(_, let e): return e
        case .batch(let failures, _), .transaction(let failures, _): return failures.first?.error.errno
        default: return nil
        }
    }

    /// The kernel's extended-ack text, if it sent one.
    public var kernelMessage: String? {
        switch self {
        case .kernel(_, _, let m): return m
        case .batch(let failures, _), .transaction(let failures, _): return failures.first?.error.kernelMessage
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .kernel(let op, let e, let m):
            return "\(op): \(e)" + (m.map { ": \($0)" } ?? "")
        case .libnl(let op, let code, let text): return "\(op): libnl error \(code): \(text)"
        case .system(let call, let e): return "\(call): \(e)"
        case .timeout(let op): return "\(op): no reply from the kernel before the timeout"
        case .dumpInterrupted(let op): return "\(op): dump kept being interrupted (NLM_F_DUMP_INTR)"
        case .malformedReply(let op, let d): return "\(op): malformed reply: \(d)"
        case .invalidArgument(let d): return "invalid argument: \(d)"
        case .batch(let failures, let applied):
            let shown = failures.prefix(5).map(\.description).joined(separator: "; ")
            return "\(failures.count) of \(failures.count + applied) requests failed: \(shown)"
                + (failures.count > 5 ? "; …" : "")
        case .transaction(let failures, let n):
            let shown = failures.prefix(5).map(\.description).joined(separator: "; ")
            return "nftables batch of \(n) changes rolled back, nothing applied: \(shown)"
                + (failures.count > 5 ? "; and \(failures.count - 5) more" : "")
        }
    }
}

/// Calls a libc function that returns -1 and sets errno, retrying EINTR.
@inline(__always)
func syscallRetrying(_ name: String, _ body: () -> Int32) throws(KernelError) -> Int32 {
    while true {
        let rc = body()
        if rc >= 0 { return rc }
        let e = Errno.current
        if e.rawValue == EINTR { continue }
        throw .system(call: name, errno: e)
    }
}
