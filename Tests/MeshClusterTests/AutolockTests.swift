import Foundation
import Testing
@testable import MeshCluster

/// Autolock at the manager core: the unlock key's form, what it seals, and a store that opens only
/// with it.
@Suite struct AutolockTests {
    @Test func theKeyReadsBackAsDockerWritesIt() throws {
        let key = UnlockKey.generate()
        let text = key.description
        #expect(text.hasPrefix("SWMKEY-1-") && text.count == 9 + 43 && !text.hasSuffix("="))
        #expect(try UnlockKey(parsing: text) == key)
        #expect(try UnlockKey(parsing: "  \(text)\n") == key, "a pasted key with white space")
        #expect(UnlockKey.generate() != key)
        for bad in ["", "SWMKEY-1-", "SWMKEY-2-" + text.dropFirst(9), "SWMKEY-1-!!!!", "SWMKEY-1-" + String(text.dropFirst(9).dropLast(4))]
        {
            #expect(throws: ClusterError.self, "\(bad)") { try UnlockKey(parsing: bad) }
        }
    }

    @Test func onlyTheSameKeyAndPurposeOpenWhatWasSealed() throws {
        let key = UnlockKey.generate()
        let sealed = key.seal("-----BEGIN PRIVATE KEY-----", purpose: "a")
        #expect(!sealed.contains("PRIVATE"))
        #expect(try key.open(sealed, purpose: "a") == "-----BEGIN PRIVATE KEY-----")
        #expect(key.seal("x", purpose: "a") != key.seal("x", purpose: "a"), "a fresh nonce each time")
        #expect(throws: ClusterError.invalidArgument(UnlockKey.invalidKey)) { try UnlockKey.generate().open(sealed, purpose: "a") }
        #expect(throws: ClusterError.invalidArgument(UnlockKey.invalidKey)) { try key.open(sealed, purpose: "b") }
        var altered = Array(Data(base64Encoded: sealed)!)
        altered[altered.count / 2] ^= 1
        #expect(throws: ClusterError.invalidArgument(UnlockKey.invalidKey)) {
            try key.open(Data(altered).base64EncodedString(), purpose: "a")
        }
        #expect(throws: ClusterError.invalidArgument(UnlockKey.invalidKey)) { try key.open("not base64", purpose: "a") }
    }

    /// `swarm init --autolock`: the CA key is sealed in its first write, never stored in the open.
    @Test func anAutolockedInitNeverStoresTheCAKeyOpen() throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let key = UnlockKey.generate()
        let m = try ClusterManager.initialize(
            store: try SQLiteClusterStore(path: path), nodeID: ObjectID.make(), hostname: "m1", advertiseAddr: "192.168.50.1",
            unlockKey: key)
        #expect(m.unlockKey == key)
        let file = try String(decoding: Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        #expect(!file.contains(m.settings.caKeyPEM.split(separator: "\n")[1]))
        #expect(throws: ClusterError.locked) { try ClusterManager.open(store: SQLiteClusterStore(path: path)) }
    }

    /// On: the store holds the CA key sealed (no PEM in the file), a restart opens only with the key,
    /// the wrong key changes nothing; rotation retires the old key once an unlock settles; off stores it open again.
    @Test func anAutolockedStoreOpensOnlyWithItsKey() throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        var m = try ClusterManager.initialize(
            store: try SQLiteClusterStore(path: path), nodeID: ObjectID.make(), hostname: "m1", advertiseAddr: "192.168.50.1")
        let caKey = m.settings.caKeyPEM
        #expect(m.unlockKey == nil)
        let key = try #require(try m.setAutolock(true))
        #expect(try m.setAutolock(true) == key, "turning it on again keeps the key")
        // What a later write stores stays sealed (a token rotation saves the settings).
        try m.rotateJoinToken(.worker)
        let file = try String(decoding: Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        #expect(!file.contains(caKey.split(separator: "\n")[1]), "the CA key is in the store's file in the open")
        #expect(try ClusterBootstrap.isLocked(store: SQLiteClusterStore(path: path)) == true)

        #expect(throws: ClusterError.locked) { try ClusterManager.open(store: SQLiteClusterStore(path: path)) }
        #expect(throws: ClusterError.invalidArgument(UnlockKey.invalidKey)) {
            try ClusterManager.open(store: SQLiteClusterStore(path: path), unlockKey: UnlockKey.generate())
        }
        var reopened = try #require(try ClusterManager.open(store: SQLiteClusterStore(path: path), unlockKey: key))
        #expect(reopened.settings.caKeyPEM == caKey && reopened.settings.sealedCAKey == nil && reopened.unlockKey == key)
        #expect(reopened.settings.tokens == m.settings.tokens)

        // A rotation keeps the key before it valid until an unlock settles on one: a crash between
        // the writes, or a user who never got the new key, is not locked out.
        let rotated = try reopened.rotateUnlockKey()
        #expect(rotated != key && reopened.previousUnlockKey == key)
        try reopened.rotateJoinToken(.worker)  // a later save keeps both copies
        #expect(try ClusterManager.open(store: SQLiteClusterStore(path: path), unlockKey: key)?.settings.caKeyPEM == caKey)
        var settled = try #require(try ClusterManager.open(store: SQLiteClusterStore(path: path), unlockKey: rotated))
        #expect(settled.settings.caKeyPEM == caKey && settled.unlockKey == rotated)
        try settled.settleUnlockKey()
        #expect(throws: ClusterError.invalidArgument(UnlockKey.invalidKey)) {
            try ClusterManager.open(store: SQLiteClusterStore(path: path), unlockKey: key)
        }
        #expect(try ClusterManager.open(store: SQLiteClusterStore(path: path), unlockKey: rotated) != nil)

        #expect(try reopened.setAutolock(false) == nil && reopened.previousUnlockKey == nil)
        #expect(throws: ClusterError.failedPrecondition("cannot rotate because autolock is not turned on")) {
            try reopened.rotateUnlockKey()
        }
        let open = try #require(try ClusterManager.open(store: SQLiteClusterStore(path: path)))
        #expect(open.settings.caKeyPEM == caKey && open.unlockKey == nil)
        #expect(try ClusterBootstrap.isLocked(store: SQLiteClusterStore(path: path)) == false)
        // A key given for a store that is not locked is not taken for the swarm's.
        #expect(try ClusterManager.open(store: SQLiteClusterStore(path: path), unlockKey: rotated)?.unlockKey == nil)
    }

    /// Secret data at rest: sealed under the CA's key, opened only with it; data stored before
    /// sealing (no prefix) reads as it is.
    @Test func secretDataIsSealedUnderTheCAsKey() throws {
        let ca = try ClusterCA.create(clusterID: "c1")
        let sealing = SecretSealing(ca: ca)
        let sealed = sealing.seal(Data("hunter2".utf8))
        #expect(sealed.starts(with: SecretSealing.prefix) && sealed.range(of: Data("hunter2".utf8)) == nil)
        #expect(try sealing.open(sealed) == Data("hunter2".utf8))
        #expect(try sealing.open(Data("legacy".utf8)) == Data("legacy".utf8))
        #expect(throws: ClusterError.self) { try SecretSealing(ca: try ClusterCA.create(clusterID: "c2")).open(sealed) }
        var altered = sealed
        altered[altered.count - 1] ^= 1
        #expect(throws: ClusterError.self) { try sealing.open(altered) }
        // The same CA reloaded (a restart) derives the same key.
        let reloaded = try ClusterCA(certificatePEM: ca.certificatePEM, keyPEM: ca.keyPEM)
        #expect(try SecretSealing(ca: reloaded).open(sealed) == Data("hunter2".utf8))
    }
}
