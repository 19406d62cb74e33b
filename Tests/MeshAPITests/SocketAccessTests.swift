import Foundation
@testable import MeshAPI
import MeshTestbed
import Testing

/// Who may use the API socket: whoever may write it. It is 0660 and in the configured group before it
/// accepts anything; a user outside the group cannot connect, one in it can.
@Suite struct SocketAccessTests {
    /// A gid no account on the machine uses, so membership comes only from what the test grants.
    static let testGroup: gid_t = 47_913

    static func path() -> String { "/tmp/meshapi-access-\(getpid())-\(UUID().uuidString.prefix(8)).sock" }

    static func attributes(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    @Test func theModeAndGroupAreSetBeforeTheSocketListens() throws {
        guard geteuid() == 0 else { return }  // chown to another group needs root; CI runs as root
        let path = Self.path()
        defer { unlink(path) }
        let fd = try APISocket.bound(at: path, group: Self.testGroup)
        defer { close(fd) }
        let st = try #require(Self.attributes(path))
        #expect(st.st_mode & S_IFMT == S_IFSOCK)
        #expect(st.st_mode & 0o7777 == 0o660, "mode \(String(st.st_mode & 0o7777, radix: 8))")
        #expect(st.st_gid == Self.testGroup)
        // Not listening yet: a connect now is refused, so nobody can have got in under another mode.
        let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(client) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let failure = errno
        #expect(result == -1 && failure == ECONNREFUSED, "connect: \(result), errno \(failure)")
    }

    @Test func onlyTheOwnerAndTheGroupCanTalkToTheDaemon() async throws {
        guard geteuid() == 0 else { return }
        let path = Self.path()
        let server = try await APIServer.start(socketPath: path, router: APIRouter(backend: InMemoryEngine()), socketGroup: Self.testGroup)
        defer {
            unlink(path)
            Task { await server.stop() }
        }
        let ping = ["curl", "-s", "--max-time", "5", "--unix-socket", path, "http://d/_ping"]
        let root = try await offPool(ping)
        #expect(root.stdout == "OK", "root: \(root.stderr)")
        // `nobody`, with no supplementary group: connect(2) is refused by the file's mode.
        let outsider = try await offPool(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + ping)
        #expect(!outsider.succeeded && outsider.stdout.isEmpty, "an outsider reached the API: \(outsider.stdout)")
        // The same user given the socket's group gets in.
        let member = try await offPool(["setpriv", "--reuid=65534", "--regid=65534", "--groups=\(Self.testGroup)"] + ping)
        #expect(member.stdout == "OK", "a group member was refused: \(member.status) \(member.stderr)")
    }

    @Test func theGroupIsANameOrANumberAndDefaultsAsDockerdDoes() throws {
        #expect(try APISocket.group(named: "root") == 0)
        #expect(try APISocket.group(named: "4242") == 4242)
        #expect(throws: APISocketError.unknownGroup("no-such-group-meshd")) { try APISocket.group(named: "no-such-group-meshd") }
        var entry = Glibc.group()
        var found: UnsafeMutablePointer<Glibc.group>?
        var buffer = [CChar](repeating: 0, count: 16384)
        let docker = getgrnam_r("docker", &entry, &buffer, buffer.count, &found) == 0 && found != nil ? entry.gr_gid : nil
        #expect(try APISocket.group(named: nil) == docker ?? 0)
    }

    @Test func somethingElseInTheWayIsNotRemoved() throws {
        let path = Self.path()
        defer { unlink(path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
        #expect(throws: APISocketError.notASocket(path)) { _ = try APISocket.bound(at: path, group: nil) }
        #expect(FileManager.default.contents(atPath: path) == Data("keep".utf8))
    }
}
