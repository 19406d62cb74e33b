import Foundation

/// What `docker secret create` and `docker config create` store: a name, labels and the payload. The
/// two kinds differ in what they may hold and show (a secret's data never leaves the manager through
/// the API), so each is a kind of its own around this one spec.
public struct DataObjectSpec: Codable, Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var data: Data
    /// `Templating.Name` (Docker's `golang` template driver); recorded, since meshd mounts nothing yet.
    public var templating: String?

    public init(name: String, labels: [String: String] = [:], data: Data, templating: String? = nil) {
        self.name = name
        self.labels = labels
        self.data = data
        self.templating = templating
    }

    /// swarmkit's `validateConfigOrSecretAnnotations`: at most 64 of `[a-zA-Z0-9-_.]`, starting and
    /// ending with a letter or digit.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count <= 64, let first = bytes.first, let last = bytes.last else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) }
        return alnum(first) && alnum(last) && bytes.allSatisfy { alnum($0) || $0 == 45 || $0 == 95 || $0 == 46 }
    }

    static let nameRule =
        "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]"
}

/// What secrets and configs share, so the manager's rules (`ClusterManager+DataObjects`) and the API's
/// mapping are written once for both kinds.
public protocol DataObject: StoredObject {
    var createdAt: Date { get }
    var spec: DataObjectSpec { get set }
    /// swarmkit's limit on the payload, and as its message words it.
    static var maxSize: Int { get }
    static var maxSizeText: String { get }
    /// Whether inspect shows the data (configs). A secret's spec comes back without it, so an update
    /// that sends none keeps it; a config's must come back unchanged.
    static var showsData: Bool { get }
    /// Whether the data is stored sealed (secrets: `SecretSealing`).
    static var sealsData: Bool { get }
    init(id: String, version: UInt64, createdAt: Date, updatedAt: Date, spec: DataObjectSpec)
}

/// A swarm secret (`docker secret`): up to 500 KiB the manager keeps for services to mount.
public struct ClusterSecret: Codable, Sendable, Equatable {
    public var id: String
    public var version: UInt64
    public var createdAt: Date
    public var updatedAt: Date
    public var spec: DataObjectSpec

    /// swarmkit's `MaxSecretSize`.
    public static let maxSize = 500 * 1024
    public static let maxSizeText = "500 KiB"
    public static let showsData = false
    public static let sealsData = true

    public init(id: String, version: UInt64 = 0, createdAt: Date, updatedAt: Date, spec: DataObjectSpec) {
        self.id = id
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.spec = spec
    }
}

/// A swarm config (`docker config`): up to 1000 KiB, shown back on inspect (it is not secret).
public struct ClusterConfig: Codable, Sendable, Equatable {
    public var id: String
    public var version: UInt64
    public var createdAt: Date
    public var updatedAt: Date
    public var spec: DataObjectSpec

    /// swarmkit's `MaxConfigSize`.
    public static let maxSize = 1000 * 1024
    public static let maxSizeText = "1000 KiB"
    public static let showsData = true
    public static let sealsData = false

    public init(id: String, version: UInt64 = 0, createdAt: Date, updatedAt: Date, spec: DataObjectSpec) {
        self.id = id
        self.version = version
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.spec = spec
    }
}
