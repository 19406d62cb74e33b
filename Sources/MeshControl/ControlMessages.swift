import Foundation
import MeshDataplane
import MeshKernel

/// What travels on the control channel, one JSON message per frame.
public enum ControlMessage: Codable, Sendable, Equatable {
    /// Joiner → manager, on a connection without a client certificate.
    case joinRequest(JoinRequest)
    /// Manager → joiner: its identity, or why not.
    case joinResponse(JoinResponse)
    /// Node → manager: the first message of a node's session (mutual TLS names the node too;
    /// the manager checks they agree).
    case hello(nodeID: String)
    /// Manager → node: the node's whole assignment, sent again whenever it changes.
    case assignment(NodeAssignment)
    /// Node → manager: its tasks' states.
    case status([TaskReport])
    /// Node → manager: what its VIPs and published ports carried so far, by service (sent with
    /// the heartbeat when it changed, while the manager wants it), for the cluster page.
    case traffic(NodeTraffic)
    /// Manager → node: send `traffic` (true) or stop (false). Only while a cluster page is open: the
    /// counters are read from the kernel for each report, a cost nobody should pay when nobody looks.
    case trafficWanted(Bool)
    /// Manager → node: the gossip keys to hold now (a rotation step, or the current set at a session's start).
    case gossipKeys(GossipKeySet)
    /// Node → manager: that set is installed and saved.
    case gossipKeysApplied(generation: UInt64)
    /// Manager → node: the output of some of its tasks (`service logs`).
    case logsRequest(requestID: String, taskIDs: [String])
    /// Node → manager: the answer, task ID → its output so far.
    case logs(requestID: String, output: [String: String])
    /// Manager → node: every manager's 2377 address, the leader's first, at a session's start and when the
    /// set changes, so a node reaches whichever manager leads next without a manual step.
    case managers([String])
    /// Node → manager, the first and only message of its connection (mutual TLS with the node's
    /// current certificate): a new certificate for the key this PKCS#10 request (PEM) carries.
    case renewCertificate(csrPEM: String)
    /// Manager → node: the renewed certificate (PEM, leaf first, then the cross-signed root during a
    /// root rotation), or `error` with why not.
    case certificate(String)
    /// Manager → node: the certificates the cluster wants held (at a session's start, and when a root
    /// rotation starts or ends).
    case trust(CertificateTrust)
    /// Node → manager: the certificates it holds (after a hello, a renewal, a new trust root).
    case heldCertificates(CertificateTrust)
    /// Leader → another manager of a swarm on etcd (its session, at the start and at each change): the
    /// autolock key in force and the one before a rotation (`SWMKEY-1-…`; nil: autolock off). Held in
    /// memory only, so that manager can take over (the stored CA key is sealed with it) and seals its
    /// own key at rest with it.
    case unlockKeys(current: String?, previous: String?)
    /// Follower manager → leader, the first and only message of its connection: an Engine API request
    /// the follower received, to be answered by the leader as if sent to it.
    case forward(ForwardedRequest)
    /// Leader → follower: the answer.
    case forwarded(ForwardedResponse)
    case error(String)
}

/// An Engine API request as a client sent it to a manager that does not lead.
public struct ForwardedRequest: Codable, Sendable, Equatable {
    public var method: String
    public var uri: String
    public var contentType: String?
    /// Data, not bytes: JSON carries it as base64 rather than one number per byte.
    public var body: Data
    /// The `X-Registry-Auth` header, as the client sent it (refused or honoured by the leader, never dropped).
    public var registryAuth: String?
    public init(method: String, uri: String, contentType: String?, body: Data, registryAuth: String? = nil) {
        self.registryAuth = registryAuth
        self.method = method
        self.uri = uri
        self.contentType = contentType
        self.body = body
    }
}

/// The leader's answer to a forwarded request: status, headers and the whole body.
public struct ForwardedResponse: Codable, Sendable, Equatable {
    public var status: Int
    public var headers: [[String]]
    public var body: Data
    public init(status: Int, headers: [[String]], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

public struct JoinRequest: Codable, Sendable, Equatable {
    public var token: String
    /// PKCS#10, PEM.
    public var csrPEM: String
    public var hostname: String
    public var advertiseAddress: IPAddress
    public var dataPathPort: UInt16?
    /// What the node reports about itself (`node inspect` Description); absent from older joiners.
    public var platform: NodePlatform?
    public init(
        token: String, csrPEM: String, hostname: String, advertiseAddress: IPAddress, dataPathPort: UInt16? = nil,
        platform: NodePlatform? = nil
    ) {
        self.token = token
        self.csrPEM = csrPEM
        self.hostname = hostname
        self.advertiseAddress = advertiseAddress
        self.dataPathPort = dataPathPort
        self.platform = platform
    }
}

public struct NodePlatform: Codable, Sendable, Equatable {
    public var architecture: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var engineVersion: String
    public init(architecture: String, cpus: Int, memoryBytes: Int64, engineVersion: String) {
        self.architecture = architecture
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.engineVersion = engineVersion
    }
}

public struct JoinResponse: Codable, Sendable, Equatable {
    public var nodeID: String?
    public var certificatePEM: String?
    public var caPEM: String?
    /// AES keys for gossip, hex, primary first.
    public var gossipKeys: [String]
    public var managers: [String]
    /// For a manager joining a swarm whose managers share an etcd store: where it is (`etcd://…`).
    public var store: String?
    public var error: String?
    public init(
        nodeID: String? = nil, certificatePEM: String? = nil, caPEM: String? = nil, gossipKeys: [String] = [],
        managers: [String] = [], store: String? = nil, error: String? = nil
    ) {
        self.store = store
        self.nodeID = nodeID
        self.certificatePEM = certificatePEM
        self.caPEM = caPEM
        self.gossipKeys = gossipKeys
        self.managers = managers
        self.error = error
    }
}

/// One node's traffic totals by service name, from its kernel counters (the traffic meter).
public struct NodeTraffic: Codable, Sendable, Equatable {
    public struct Count: Codable, Sendable, Equatable {
        public var connections: UInt64
        public var bytes: UInt64
        public init(connections: UInt64 = 0, bytes: UInt64 = 0) {
            self.connections = connections
            self.bytes = bytes
        }
    }
    public var services: [String: Count]
    public init(services: [String: Count] = [:]) { self.services = services }
    public var total: Count {
        services.values.reduce(into: Count()) {
            $0.connections += $1.connections
            $0.bytes += $1.bytes
        }
    }
}

public struct TaskReport: Codable, Sendable, Equatable {
    /// `starting`: running, but its health check has not passed yet (it takes no connections).
    public enum State: String, Codable, Sendable { case preparing, starting, running, complete, failed, shutdown, rejected }
    public var id: String
    public var state: State
    public var message: String
    public var exitCode: Int32?
    public init(id: String, state: State, message: String, exitCode: Int32? = nil) {
        self.id = id
        self.state = state
        self.message = message
        self.exitCode = exitCode
    }
}
