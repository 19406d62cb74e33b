import Foundation
import MeshCluster
@testable import MeshDaemon
import Testing

/// The data root and the secret files in it: made with their final modes, and narrowed with a report when
/// something widened them; what cannot be narrowed safely is refused.
@Suite struct DataRootTests {
    static func mode(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode & 0o7777 : nil
    }

    static func withScratch(_ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("meshd-dataroot-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(dir)
    }

    @Test func aNewDataRootIs0700AndItsSecretsAre0600() throws {
        try Self.withScratch { dir in
            let root = "\(dir)/parent/root"
            #expect(try DataRoot.secure(root).isEmpty)
            #expect(Self.mode(root) == 0o700)
            let record = NodeRecord(
                nodeID: "n", hostname: "h", role: .worker, clusterID: "c", advertiseAddr: "127.0.0.1", listenAddr: "0.0.0.0:2377",
                dataPathPort: 4789, managers: [], certificatePEM: "cert", keyPEM: "secret", caPEM: "ca", gossipKeys: ["00"])
            try record.save(dataRoot: root)
            #expect(Self.mode(NodeRecord.path(dataRoot: root)) == 0o600)
            #expect(Self.mode(NodeRecord.path(dataRoot: root) + ".tmp") == nil)
            #expect(try NodeRecord.load(dataRoot: root) == record)
            // Saved again (a rewrite goes through a fresh temporary file): still 0600.
            try record.save(dataRoot: root)
            #expect(Self.mode(NodeRecord.path(dataRoot: root)) == 0o600)
            // The store is created owner-only by SQLiteClusterStore itself.
            _ = try SQLiteClusterStore(path: "\(root)/cluster.sqlite")
            #expect(Self.mode("\(root)/cluster.sqlite") == 0o600)
            #expect(try DataRoot.secure(root).isEmpty)
        }
    }

    @Test func widenedModesAreNarrowedAndReported() throws {
        try Self.withScratch { dir in
            let root = "\(dir)/root"
            try DataRoot.secure(root)
            for name in ["node.json", "cluster.sqlite", "cluster.sqlite-journal"] {
                #expect(FileManager.default.createFile(atPath: "\(root)/\(name)", contents: Data("x".utf8)))
            }
            chmod(root, 0o755)
            chmod("\(root)/node.json", 0o644)
            chmod("\(root)/cluster.sqlite", 0o640)
            chmod("\(root)/cluster.sqlite-journal", 0o400)  // narrower than allowed: left alone
            let repairs = try DataRoot.secure(root)
            #expect(
                repairs == [
                    .init(path: root, oldMode: 0o755, newMode: 0o700), .init(path: "\(root)/node.json", oldMode: 0o644, newMode: 0o600),
                    .init(path: "\(root)/cluster.sqlite", oldMode: 0o640, newMode: 0o600),
                ], "\(repairs)")
            #expect(repairs.first?.description.contains("\(root) was mode 755") == true)
            #expect(Self.mode(root) == 0o700 && Self.mode("\(root)/node.json") == 0o600 && Self.mode("\(root)/cluster.sqlite") == 0o600)
            #expect(Self.mode("\(root)/cluster.sqlite-journal") == 0o400)
            #expect(try DataRoot.secure(root).isEmpty)
        }
    }

    @Test func whatCannotBeRepairedSafelyIsRefused() throws {
        try Self.withScratch { dir in
            let root = "\(dir)/root"
            try DataRoot.secure(root)
            // A planted symlink where a key file belongs.
            #expect(symlink("/etc/passwd", "\(root)/node.json") == 0)
            #expect(throws: DaemonError.self) { try DataRoot.secure(root) }
            unlink("\(root)/node.json")
            // A data root that is a file.
            #expect(FileManager.default.createFile(atPath: "\(dir)/file", contents: nil))
            #expect(throws: DaemonError.self) { try DataRoot.secure("\(dir)/file") }
            // A key file of another user (only root can make one to test with).
            if geteuid() == 0 {
                #expect(FileManager.default.createFile(atPath: "\(root)/cluster.sqlite", contents: nil))
                #expect(chown("\(root)/cluster.sqlite", 65534, 65534) == 0)
                #expect(throws: DaemonError.self) { try DataRoot.secure(root) }
            }
        }
    }
}
