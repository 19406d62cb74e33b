import NIOCore
import NIOSSL
import Synchronization

/// Why the 2377 listener turned a peer away. Each is counted by `ControlServer.refusals`, so an operator (and the
/// attacker tests) can tell a probe of the port from a stolen or stale certificate.
public enum ControlRefusalCause: String, Sendable, CaseIterable, Codable {
    /// The bytes were not a TLS 1.3 handshake (plaintext, an older TLS, a protocol error).
    case handshake
    /// The client's certificate does not verify under the cluster CA: another CA, expired, or tampered with.
    case untrustedCertificate
    /// A node session was asked for without a client certificate (only a join may come without one).
    case noCertificate
    /// The certificate names another node than the session claims.
    case identityMismatch
    /// A valid certificate of a node the manager no longer has: certificates are not revoked any other way, so this
    /// check is what makes `node rm` final.
    case unknownNode
    /// A join request the manager turned down (a wrong or rotated token, a bad certificate request).
    case joinRefused
}

/// How many peers the 2377 listener refused since it started, by cause. A plain value (a snapshot): metrics read
/// it and export one counter per cause.
public struct ControlRefusals: Sendable, Equatable, CustomStringConvertible {
    public private(set) var counts: [ControlRefusalCause: Int] = [:]
    public init() {}
    public subscript(cause: ControlRefusalCause) -> Int { counts[cause] ?? 0 }
    public var total: Int { counts.values.reduce(0, +) }
    mutating func record(_ cause: ControlRefusalCause) { counts[cause, default: 0] += 1 }
    public var description: String {
        ControlRefusalCause.allCases.map { "\($0.rawValue)=\(self[$0])" }.joined(separator: " ")
    }
}

/// Thrown by a `ControlServer.Handler` that refuses its peer (after sending it whatever answer the protocol
/// wants): the server counts `cause` and closes the connection.
public struct ControlRefused: Error, Sendable, CustomStringConvertible {
    public var cause: ControlRefusalCause
    public var reason: String
    public init(_ cause: ControlRefusalCause, _ reason: String) {
        self.cause = cause
        self.reason = reason
    }
    public var description: String { "refused (\(cause.rawValue)): \(reason)" }
}

/// The counters, shared by the server and its connections' pipelines.
final class RefusalCounter: Sendable {
    private let value = Mutex(ControlRefusals())
    func record(_ cause: ControlRefusalCause) { value.withLock { $0.record(cause) } }
    var snapshot: ControlRefusals { value.withLock { $0 } }
}

/// Sits right after the TLS handler and counts the handshakes it fails. A peer that merely hangs up during the
/// handshake is not counted: a joiner reading the manager's chain (`ControlClient.presentedChain`) does exactly that.
final class HandshakeRefusalCounter: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private let counter: RefusalCounter

    init(_ counter: RefusalCounter) { self.counter = counter }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let cause = Self.cause(of: error) { counter.record(cause) }
        context.fireErrorCaught(error)
    }

    static func cause(of error: any Error) -> ControlRefusalCause? {
        guard case .handshakeFailed(let failure) = error as? NIOSSLError else { return nil }
        switch failure {
        case .sslError(let stack), .unknownError(let stack):
            let hangUps: [BoringSSLInternalError] = [.eofDuringHandshake, .eofDuringAdditionalCertficiateChainValidation]
            if stack.allSatisfy(hangUps.contains) { return nil }
            // BoringSSL reports a chain that does not verify (unknown CA, expired, bad signature) with this reason;
            // NIOSSL exposes it only as text.
            if stack.contains(where: { "\($0)".contains("CERTIFICATE_VERIFY_FAILED") }) { return .untrustedCertificate }
            return .handshake
        default:
            // A reset or another system error mid-handshake: the peer went away, it was not turned away.
            return nil
        }
    }
}
