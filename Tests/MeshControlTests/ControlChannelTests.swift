import Crypto
import Foundation
@testable import MeshControl
import NIOEmbedded
import NIOCore
import NIOPosix
import NIOSSL
import MeshTestbed
import Synchronization
import Testing
import X509

/// Real TLS on 127.0.0.1 (no root, no routes): mutual TLS names the node, a joining node gets in
/// without a certificate, a foreign CA does not, and bad frames close only their connection.
@Suite struct ControlChannelTests {
    /// The frame decoder alone: split and joined frames, and a length over the limit.
    @Test func framesSplitJoinAndOversize() throws {
        let ch = EmbeddedChannel(handler: ByteToMessageHandler(FrameDecoder(limit: 1024)))
        var b = ByteBuffer()
        for text in ["one", "two"] {
            b.writeInteger(UInt32(text.utf8.count))
            b.writeString(text)
        }
        b.writeInteger(UInt32(5))
        b.writeString("thr")
        try ch.writeInbound(b)
        #expect(try ch.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "one")
        #expect(try ch.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "two")
        #expect(try ch.readInbound(as: ByteBuffer.self) == nil)
        try ch.writeInbound(ByteBuffer(string: "ee"))
        #expect(try ch.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "three")
        var huge = ByteBuffer()
        huge.writeInteger(UInt32(1 << 30))
        #expect(throws: ControlError.self) { try ch.writeInbound(huge) }
        _ = try? ch.finish()
    }

    typealias PKI = TestPKI

    struct Hello: Codable, Equatable { var text: String }

    /// A server that answers each frame with "<peer CN or nobody>: <text>".
    static func echoServer(_ pki: PKI) async throws -> ControlServer {
        try await ControlServer.start(host: "127.0.0.1", port: 0, identity: try pki.issue("manager1"), caPEM: pki.caPEM) {
            peer, inbound, writer in
            var it = inbound.makeAsyncIterator()
            while let hello = try await inbound.next(Hello.self, iterator: &it) {
                let who = await peer.commonName() ?? "nobody"
                try await writer.send(json: Hello(text: "\(who): \(hello.text)"))
            }
        }
    }

    static func ask(_ conn: ControlConnection, _ text: String) async throws -> String? {
        try await conn.run { inbound, writer in
            try await writer.send(json: Hello(text: text))
            var it = inbound.makeAsyncIterator()
            return try await inbound.next(Hello.self, iterator: &it)?.text
        }
    }

    @Test func mutualTLSNamesTheNodeAndJoinersGetInWithoutACertificate() async throws {
        let pki = try PKI()
        let server = try await Self.echoServer(pki)
        let node = try await ControlClient.connect(
            host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try pki.issue("node-7"))
        #expect(try await Self.ask(node, "hi") == "node-7: hi")
        let joiner = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: pki.caPEM)
        #expect(try await Self.ask(joiner, "token please") == "nobody: token please")
        await server.close()
    }

    @Test func aForeignCAIsRefusedBothWays() async throws {
        let pki = try PKI(), other = try PKI(name: "someone else")
        let server = try await Self.echoServer(pki)
        // A node certificate from another CA: the manager refuses the handshake.
        let intruder = try await ControlClient.connect(
            host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try other.issue("node-x"))
        await #expect(throws: (any Error).self) { _ = try await Self.ask(intruder, "hi") }
        // A node that trusts another CA refuses this manager.
        let confused = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: other.caPEM)
        await #expect(throws: (any Error).self) { _ = try await Self.ask(confused, "hi") }
        // And the server still serves.
        let node = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try pki.issue("n1"))
        #expect(try await Self.ask(node, "still there") == "n1: still there")
        await server.close()
    }

    @Test func aJoinerSeesTheCAItCanCheckAgainstItsToken() async throws {
        let pki = try PKI()
        let server = try await Self.echoServer(pki)
        let chain = try await ControlClient.presentedChain(host: "127.0.0.1", port: server.port)
        #expect(chain.count == 2 && chain.last == pki.caDER)
        #expect(SHA256.hash(data: chain.last!) == SHA256.hash(data: pki.caDER))
        await server.close()
    }

    final class IdentityBox: Sendable {
        let value: Mutex<ControlIdentity>
        init(_ v: ControlIdentity) { value = Mutex(v) }
    }

    /// Issue 17, certificate renewal: the listener presents the identity in force at each handshake,
    /// so a renewed certificate is shown from the next connection on, and a connection made before
    /// the swap goes on unharmed.
    @Test func aRenewedCertificateIsPresentedFromTheNextHandshakeOn() async throws {
        let pki = try PKI()
        let first = try pki.issue("manager1"), second = try pki.issue("manager1")
        let box = IdentityBox(first)
        let server = try await ControlServer.start(
            host: "127.0.0.1", port: 0, identity: { box.value.withLock { $0 } }, caPEM: { pki.caPEM }
        ) { peer, inbound, writer in
            var it = inbound.makeAsyncIterator()
            while let hello = try await inbound.next(Hello.self, iterator: &it) {
                try await writer.send(json: Hello(text: "\(await peer.commonName() ?? "nobody"): \(hello.text)"))
            }
        }
        func leaf(_ identity: ControlIdentity) throws -> [UInt8] {
            try NIOSSLCertificate.fromPEMBytes(Array(identity.certificateChainPEM.utf8))[0].toDERBytes()
        }
        #expect(try await ControlClient.presentedChain(host: "127.0.0.1", port: server.port).first == (try leaf(first)))
        let before = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try pki.issue("n1"))
        let answers = try await before.run { inbound, writer in
            var it = inbound.makeAsyncIterator()
            try await writer.send(json: Hello(text: "one"))
            let one = try await inbound.next(Hello.self, iterator: &it)?.text
            box.value.withLock { $0 = second }
            let shown = try await ControlClient.presentedChain(host: "127.0.0.1", port: server.port).first
            try await writer.send(json: Hello(text: "two"))
            return (one, shown, try await inbound.next(Hello.self, iterator: &it)?.text)
        }
        #expect(answers.0 == "n1: one" && answers.2 == "n1: two")
        let leaf1 = try leaf(first), leaf2 = try leaf(second)
        #expect(answers.1 == leaf2 && leaf2 != leaf1)
        let after = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try pki.issue("n2"))
        #expect(try await Self.ask(after, "three") == "n2: three")
        await server.close()
    }

    @Test func nonTLSBytesCloseOnlyTheirConnection() async throws {
        let pki = try PKI()
        let server = try await Self.echoServer(pki)
        // Not TLS at all.
        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: server.port)
            .get()
        try await raw.writeAndFlush(ByteBuffer(bytes: Array(repeating: 0x41, count: 4096))).get()
        try await raw.closeFuture.get()
        let node = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try pki.issue("n3"))
        #expect(try await Self.ask(node, "ok?") == "n3: ok?")
        await server.close()
    }

    /// The refusal counters rise (the server counts on its event loop, possibly after the client has seen the failure).
    static func refusals(_ server: ControlServer, reach cause: ControlRefusalCause, _ count: Int) async -> Bool {
        for _ in 0..<200 {
            if await server.refusals[cause] >= count { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func refusedHandshakesAreCountedByCauseAndHangUpsAreNot() async throws {
        let pki = try PKI(), other = try PKI(name: "someone else")
        let server = try await Self.echoServer(pki)
        #expect(await server.refusals == ControlRefusals())
        // A joiner reading the chain hangs up mid-handshake: not a refusal.
        _ = try await ControlClient.presentedChain(host: "127.0.0.1", port: server.port)
        let node = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try pki.issue("n1"))
        #expect(try await Self.ask(node, "hi") == "n1: hi")
        let none = await server.refusals
        #expect(none.total == 0, "\(none)")

        let intruder = try await ControlClient.connect(
            host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try other.issue("node-x"))
        await #expect(throws: (any Error).self) { _ = try await Self.ask(intruder, "hi") }
        #expect(await Self.refusals(server, reach: .untrustedCertificate, 1))

        let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: server.port)
            .get()
        try await raw.writeAndFlush(ByteBuffer(bytes: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))).get()
        try await raw.closeFuture.get()
        #expect(await Self.refusals(server, reach: .handshake, 1))
        let counted = await server.refusals
        #expect(counted.total == 2 && counted[.untrustedCertificate] == 1 && counted[.handshake] == 1, "\(counted)")
        await server.close()
    }

    @Test func aHandlerThatThrowsControlRefusedIsCounted() async throws {
        let pki = try PKI()
        let server = try await ControlServer.start(host: "127.0.0.1", port: 0, identity: try pki.issue("m"), caPEM: pki.caPEM) {
            peer, inbound, writer in
            var it = inbound.makeAsyncIterator()
            _ = try await inbound.next(Hello.self, iterator: &it)
            guard await peer.commonName() != nil else {
                try await writer.send(json: Hello(text: "no"))
                throw ControlRefused(.noCertificate, "test")
            }
            try await writer.send(json: Hello(text: "yes"))
        }
        let anonymous = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: pki.caPEM)
        #expect(try await Self.ask(anonymous, "let me in") == "no")
        let node = try await ControlClient.connect(host: "127.0.0.1", port: server.port, caPEM: pki.caPEM, identity: try pki.issue("n"))
        #expect(try await Self.ask(node, "let me in") == "yes")
        #expect(await Self.refusals(server, reach: .noCertificate, 1))
        let counted = await server.refusals
        #expect(counted.total == 1, "\(counted)")
        await server.close()
    }

    /// `swarm leave --force` closes the control server while nodes keep connecting. A connection NIO
    /// accepted and initialised but then dropped, because the listener closed before it reached the
    /// accept loop, used to take the daemon down (SIGILL: "Deinited NIOAsyncWriter without calling
    /// finish()"). Many start/close cycles, each closed at a random moment under a stream of connects
    /// from several tasks, on a group of several event loops so that accepted channels live on other
    /// loops than the listener (the window in which the drop happens).
    @Test(.timeLimit(.minutes(5)))
    func closingWhileConnectionsArriveFinishesEveryAcceptedChannel() async throws {
        let pki = try PKI()
        let identity = try pki.issue("manager1")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let served = ServedCount()
        for _ in 0..<300 {
            let server = try await ControlServer.start(
                host: "127.0.0.1", port: 0, identity: identity, caPEM: pki.caPEM,
                group: group
            ) { _, inbound, _ in
                served.add()
                for try await _ in inbound {}
            }
            let port = server.port
            await withDiscardingTaskGroup { tasks in
                for _ in 0..<4 {
                    tasks.addTask {
                        // Connect and hang up until the closed listener refuses.
                        while let ch = try? await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get() {
                            ch.close(promise: nil)
                        }
                    }
                }
                tasks.addTask {
                    try? await Task.sleep(for: .microseconds(Int.random(in: 0...4000)))
                    await server.close()
                }
            }
            // Closed means closed: nothing listens on the port any more.
            await #expect(throws: (any Error).self) {
                _ = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
            }
        }
        // The servers did serve while they were open (the race is exercised, not avoided).
        #expect(served.value > 0)
        try await group.shutdownGracefully()
    }
}

final class ServedCount: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
