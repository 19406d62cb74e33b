import Foundation

/// What an image name means on this node: the process runtime has no images, so each name maps
/// to a local command. Built in: the whoami test servers (served by `meshd whoami`) and
/// busybox/alpine (the host's busybox); anything else comes from `images.json` in the data root:
/// `{"nginx": ["/usr/sbin/nginx", "-g", "daemon off;"]}`. Without the built-in names (`builtins`
/// false: `meshd daemon --no-builtin-images`) busybox, alpine and whoami are images like any other,
/// run as containers from a registry; `images.json` still applies.
public struct ImageCatalog: Sendable {
    public enum Failure: Error, Sendable, CustomStringConvertible, Equatable {
        case unmapped(image: String, catalog: String)
        case unreadable(path: String, reason: String)
        public var description: String {
            switch self {
            case .unmapped(let image, let catalog):
                return
                    "image \"\(image)\" is not in this node's image catalog: add it to \(catalog) as {\"\(image)\": [\"/path/to/command\", …]}"
            case .unreadable(let path, let reason):
                return "image catalog \(path): \(reason)"
            }
        }
    }

    public let meshd: String
    public let busybox: String
    public let userFile: String
    public let user: [String: [String]]
    public let builtins: Bool

    /// Reads `<dataRoot>/images.json` if present.
    public init(dataRoot: String, meshd: String, busybox: String = "/bin/busybox", builtins: Bool = true) throws(Failure) {
        self.meshd = meshd
        self.busybox = busybox
        self.builtins = builtins
        userFile = dataRoot + "/images.json"
        guard let data = FileManager.default.contents(atPath: userFile) else {
            user = [:]
            return
        }
        do { user = try JSONDecoder().decode([String: [String]].self, from: data) } catch {
            throw .unreadable(path: userFile, reason: "expected {\"image\": [\"command\", \"arg\", …]}: \(error)")
        }
        if let bad = user.first(where: { $0.value.isEmpty }) {
            throw .unreadable(path: userFile, reason: "\(bad.key) maps to an empty command")
        }
    }

    /// `nginx:1.27`, `docker.io/library/nginx:latest@sha256:…` and `nginx` are one image here.
    public static func normalize(_ image: String) -> String {
        var name = image
        if let at = name.firstIndex(of: "@") { name = String(name[..<at]) }
        if let colon = name.lastIndex(of: ":"), !name[colon...].contains("/") { name = String(name[..<colon]) }
        for prefix in ["docker.io/library/", "docker.io/", "index.docker.io/library/", "library/"] where name.hasPrefix(prefix) {
            name = String(name.dropFirst(prefix.count))
        }
        return name
    }

    /// The command line for `image` run with `args` (the service's command and arguments).
    public func command(image: String, args: [String]) throws(Failure) -> [String] {
        let name = Self.normalize(image)
        if let mapped = user[name] { return mapped + args }
        guard builtins else { throw .unmapped(image: image, catalog: userFile) }
        switch name {
        case "meshd/whoami", "jwilder/whoami":
            return [meshd, "whoami", "--port", "8000"] + args
        case "traefik/whoami", "containous/whoami":
            return [meshd, "whoami", "--port", "80"] + args
        case "busybox", "alpine":
            return [busybox] + (args.isEmpty ? ["sh"] : args)
        default:
            throw .unmapped(image: image, catalog: userFile)
        }
    }
}
