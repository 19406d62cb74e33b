import Foundation
import Synchronization
import Testing
@testable import MeshKernel
import MeshTestbed

/// IPsec through XFRMHandle, in the VM lane (the host kernel has no ESP/AES-GCM for traffic):
/// two namespaces joined by a veth stand for two nodes' underlays, with ESP transport-mode SAs
/// and policies for VXLAN's UDP port in both directions, checked with `ip xfrm`, with real UDP
/// datagrams and with tcpdump on the veth. Test names start with `xfrm`: scripts/vm-test counts
/// them and fails the lane when they did not all pass.
struct XFRMPair {
    static let addressA = IPAddress("198.18.10.1")!
    static let addressB = IPAddress("198.18.10.2")!
    static let port: UInt16 = 4789
    static let reqid: UInt32 = 7

    let group: NamespaceGroup
    let a: NetworkNamespace
    let b: NetworkNamespace
    let xa: XFRMHandle
    let xb: XFRMHandle

    /// Namespaces `a` (veth `va`, 198.18.10.1/24) and `b` (veth `vb`, 198.18.10.2/24); nothing in
    /// the root namespace. `body` runs with them and they are removed whatever happens.
    static func with<T>(_ tag: String, _ body: (XFRMPair) async throws -> T) async throws -> T {
        guard getuid() == 0 else { throw NotRoot() }
        let group = NamespaceGroup(tag: tag)
        defer { group.destroy() }
        let a = try group.create("a"), b = try group.create("b")
        let ha = try NetlinkHandle(namespace: a), hb = try NetlinkHandle(namespace: b)
        try await ha.linkAdd(LinkSpec(name: "va", kind: .veth(peerName: "vb", peerNamespace: b), up: true))
        try await ha.apply([
            .linkSet("lo", LinkChange(up: true)),
            .addrAdd(InterfaceAddress(device: "va", prefix: IPPrefix(address: addressA, length: 24)!)),
        ])
        try await hb.apply([
            .linkSet("lo", LinkChange(up: true)),
            .addrAdd(InterfaceAddress(device: "vb", prefix: IPPrefix(address: addressB, length: 24)!)),
            .linkSet("vb", LinkChange(up: true)),
        ])
        let pair = XFRMPair(group: group, a: a, b: b, xa: try XFRMHandle(namespace: a), xb: try XFRMHandle(namespace: b))
        return try await body(pair)
    }

    static func randomAEAD() throws -> XFRMAEAD {
        var g = SystemRandomNumberGenerator()
        return try XFRMAEAD.aesGCM128(key: (0..<16).map { _ in g.next() }, salt: (0..<4).map { _ in g.next() })
    }

    /// The SA from `src` to `dst` with `spi`, as both ends install it.
    static func state(_ src: IPAddress, _ dst: IPAddress, spi: UInt32, aead: XFRMAEAD) -> XFRMState {
        XFRMState(source: src, destination: dst, spi: spi, reqid: reqid, aead: aead)
    }

    static func outPolicy(_ src: IPAddress, _ dst: IPAddress, spi: UInt32) -> XFRMPolicy {
        XFRMPolicy(
            selector: .vxlan(from: src, to: dst, port: port), direction: .out,
            templates: [XFRMTemplate(source: src, destination: dst, reqid: reqid, spi: spi)], priority: 100)
    }

    /// `in` or `fwd` for traffic from `src` to `dst`: any SPI with the reqid, so old and new SAs
    /// are both accepted while keys rotate.
    static func inboundPolicy(_ src: IPAddress, _ dst: IPAddress, _ dir: XFRMDirection) -> XFRMPolicy {
        XFRMPolicy(
            selector: .vxlan(from: src, to: dst, port: port), direction: dir,
            templates: [XFRMTemplate(source: src, destination: dst, reqid: reqid)], priority: 100)
    }

    /// What one node programs for the pair: both SAs, then its out and in (and fwd) policies.
    static func nodeOperations(
        local: IPAddress, remote: IPAddress, outSPI: UInt32, inSPI: UInt32, outKey: XFRMAEAD, inKey: XFRMAEAD,
        forward: Bool = false
    ) -> [XFRMOperation] {
        [
            .stateAdd(state(remote, local, spi: inSPI, aead: inKey)),
            .stateAdd(state(local, remote, spi: outSPI, aead: outKey)),
            .policyUpdate(inboundPolicy(remote, local, .in)),
        ] + (forward ? [.policyUpdate(inboundPolicy(remote, local, .forward))] : []) + [
            .policyUpdate(outPolicy(local, remote, spi: outSPI))
        ]
    }

    /// Programs both directions: A → B with `spiAB`, B → A with `spiBA`, each key used by both ends.
    func install(spiAB: UInt32, spiBA: UInt32, forward: Bool = false) async throws -> (ab: XFRMAEAD, ba: XFRMAEAD) {
        let kAB = try Self.randomAEAD(), kBA = try Self.randomAEAD()
        try await xa.apply(
            Self.nodeOperations(
                local: Self.addressA, remote: Self.addressB, outSPI: spiAB, inSPI: spiBA, outKey: kAB, inKey: kBA, forward: forward))
        try await xb.apply(
            Self.nodeOperations(
                local: Self.addressB, remote: Self.addressA, outSPI: spiBA, inSPI: spiAB, outKey: kBA, inKey: kAB, forward: forward))
        return (kAB, kBA)
    }

    func ip(_ ns: NetworkNamespace, _ args: String...) throws -> String {
        try Exec.check(["ip", "-n", ns.name!] + args)
    }
}

/// A blocking UDP socket made inside a namespace (it stays there whatever thread uses it).
final class UDPSocket: @unchecked Sendable {
    let fd: Int32

    init(in ns: NetworkNamespace, bind address: IPAddress, port: UInt16, receiveTimeoutMilliseconds: Int32 = 300) throws {
        fd = try ns.run { () throws(KernelError) -> Int32 in
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .system(call: "socket", errno: .current) }
            do throws(KernelError) {
                // Room for every datagram of a test without reading while it runs.
                var size: Int32 = 8 << 20
                try NamespaceSockets.set(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size)
                try NamespaceSockets.bind(fd, address, port)
                return fd
            } catch {
                close(fd)
                throw error
            }
        }
        var tv = timeval(tv_sec: Int(receiveTimeoutMilliseconds / 1000), tv_usec: Int(receiveTimeoutMilliseconds % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends one datagram; false when the kernel refused it (as it may with a policy and no SA).
    func send(_ payload: [UInt8], to address: IPAddress, port: UInt16) -> Bool {
        let n = NamespaceSockets.withSockaddr(address, port) { sa, len in
            payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, len) }
        }
        return n == payload.count
    }

    /// Every datagram until one receive timeout passes with nothing.
    func drain() -> [[UInt8]] {
        var out: [[UInt8]] = []
        var buf = [UInt8](repeating: 0, count: 2048)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { return out }
            out.append(Array(buf[0..<n]))
        }
    }

    /// Sequence numbers of `count` datagrams "seq <n>" sent from `self` to `to`, `gapMs` apart.
    func sendSequence(_ range: Range<Int>, to: IPAddress, port: UInt16, gapMilliseconds: UInt32 = 2) -> Int {
        var refused = 0
        for i in range {
            if !send(Array("seq \(i)".utf8), to: to, port: port) { refused += 1 }
            if gapMilliseconds > 0 { usleep(gapMilliseconds * 1000) }
        }
        return refused
    }

    static func sequenceNumbers(_ datagrams: [[UInt8]]) -> [Int] {
        datagrams.compactMap { d in
            let s = String(decoding: d, as: UTF8.self)
            return s.hasPrefix("seq ") ? Int(s.dropFirst(4)) : nil
        }
    }
}

@Suite("XFRM", .serialized)
struct XFRMTests {
    typealias P = XFRMPair
    static let spiAB: UInt32 = 0x1001
    static let spiBA: UInt32 = 0x2001

    @Test func xfrmStatesAndPoliciesAsIPXfrmShowsThem() async throws {
        try await P.with("mkv-xfrm") { pair in
            let keys = try await pair.install(spiAB: Self.spiAB, spiBA: Self.spiBA, forward: true)

            // ip xfrm state (iproute2 6.1 has no JSON for xfrm): both SAs in each namespace, keys as installed.
            for ns in [pair.a, pair.b] {
                let states = try pair.ip(ns, "xfrm", "state")
                for (src, dst, spi, key) in [
                    (P.addressA, P.addressB, Self.spiAB, keys.ab), (P.addressB, P.addressA, Self.spiBA, keys.ba),
                ] {
                    #expect(
                        states.contains("src \(src) dst \(dst)\n\tproto esp spi \(XFRMState.spiText(spi)) reqid 7 mode transport"),
                        "\(states)")
                    let hexKey = key.key.map { String(format: "%02x", $0) }.joined()
                    #expect(states.contains("aead rfc4106(gcm(aes)) 0x\(hexKey) 128"), "\(states)")
                }
                #expect(states.contains("replay-window 32"), "\(states)")
            }
            let policiesA = try pair.ip(pair.a, "xfrm", "policy")
            #expect(
                policiesA.contains("src 198.18.10.1/32 dst 198.18.10.2/32 proto udp dport 4789 \n\tdir out priority 100"), "\(policiesA)")
            #expect(
                policiesA.contains("tmpl src 198.18.10.1 dst 198.18.10.2\n\t\tproto esp spi 0x00001001 reqid 7 mode transport"),
                "\(policiesA)")
            #expect(
                policiesA.contains("src 198.18.10.2/32 dst 198.18.10.1/32 proto udp dport 4789 \n\tdir in priority 100"), "\(policiesA)")
            #expect(
                policiesA.contains("src 198.18.10.2/32 dst 198.18.10.1/32 proto udp dport 4789 \n\tdir fwd priority 100"), "\(policiesA)")
            #expect(policiesA.contains("tmpl src 198.18.10.2 dst 198.18.10.1\n\t\tproto esp reqid 7 mode transport"), "\(policiesA)")

            // Our own decoder reads back exactly what was written.
            let listed = try await pair.xa.stateList()
            #expect(
                Set(listed.map(\.state)) == [
                    P.state(P.addressA, P.addressB, spi: Self.spiAB, aead: keys.ab),
                    P.state(P.addressB, P.addressA, spi: Self.spiBA, aead: keys.ba),
                ])
            let policies = try await pair.xb.policyList()
            #expect(
                Set(policies.map(\.policy)) == [
                    P.outPolicy(P.addressB, P.addressA, spi: Self.spiBA),
                    P.inboundPolicy(P.addressA, P.addressB, .in), P.inboundPolicy(P.addressA, P.addressB, .forward),
                ])
            #expect(Set(policies.map(\.index)).count == 3)
            let got = try await pair.xa.stateGet(XFRMStateID(source: P.addressA, destination: P.addressB, spi: Self.spiAB))
            #expect(got?.state.aead == keys.ab)
            #expect(try await pair.xa.stateGet(XFRMStateID(source: P.addressA, destination: P.addressB, spi: 0x9999)) == nil)
            let out = P.outPolicy(P.addressA, P.addressB, spi: Self.spiAB)
            #expect(try await pair.xa.policyGet(out.id)?.policy == out)
            #expect(try await pair.xa.policyGet(P.inboundPolicy(P.addressB, P.addressA, .out).id) == nil)

            // A mark is part of a state's identity and of a policy's.
            let mark = XFRMMark(0x2a, mask: 0xff)
            var marked = P.state(P.addressA, P.addressB, spi: 0x3001, aead: keys.ab)
            marked.mark = mark
            var markedPolicy = P.outPolicy(P.addressA, P.addressB, spi: 0x3001)
            markedPolicy.mark = mark
            try await pair.xa.apply([.stateAdd(marked), .policyAdd(markedPolicy)])
            let text = try pair.ip(pair.a, "xfrm", "state", "list", "spi", "0x3001")
            #expect(text.contains("mark 0x2a/0xff"), "\(text)")
            #expect(try await pair.xa.stateGet(marked.id)?.state == marked)
            var unmarked = marked.id
            unmarked.mark = nil
            #expect(try await pair.xa.stateGet(unmarked) == nil)
            #expect(try await pair.xa.policyGet(markedPolicy.id)?.policy == markedPolicy)
            try await pair.xa.apply([.policyDelete(markedPolicy.id), .stateDelete(marked.id)])

            // Everything goes away through the handle.
            try await pair.xa.apply(
                listed.map { .stateDelete($0.state.id) } + (try await pair.xa.policyList()).map { .policyDelete($0.policy.id) })
            #expect(try await pair.xa.stateList().isEmpty)
            #expect(try await pair.xa.policyList().isEmpty)
            #expect(try pair.ip(pair.a, "xfrm", "state").isEmpty && (try pair.ip(pair.a, "xfrm", "policy")).isEmpty)
        }
    }

    @Test func xfrmErrorsCarryTheKernelsErrnoAndNameTheObject() async throws {
        try await P.with("mkv-xfrm") { pair in
            let key = try P.randomAEAD()
            let s = P.state(P.addressA, P.addressB, spi: Self.spiAB, aead: key)
            try await pair.xa.stateAdd(s)
            do throws(KernelError) {
                try await pair.xa.stateAdd(s)
                Issue.record("duplicate SA accepted")
            } catch {
                #expect(error.errno == .exists, "\(error)")
                #expect(
                    error.description.hasPrefix("ip xfrm state add src 198.18.10.1 dst 198.18.10.2 proto esp spi 0x00001001"), "\(error)")
                #expect(!error.description.contains(key.key.map { String(format: "%02x", $0) }.joined()))
            }
            try await pair.xa.stateUpdate(s)  // an existing SA can be updated
            do throws(KernelError) {
                try await pair.xa.stateUpdate(P.state(P.addressA, P.addressB, spi: 0x7777, aead: key))
                Issue.record("update of a missing SA succeeded")
            } catch {
                #expect(error.errno?.rawValue == ESRCH, "\(error)")
            }
            do throws(KernelError) {
                try await pair.xa.stateDelete(XFRMStateID(source: P.addressA, destination: P.addressB, spi: 0x7777))
                Issue.record("deleting a missing SA succeeded")
            } catch {
                #expect(error.errno?.rawValue == ESRCH, "\(error)")
            }
            // An algorithm the kernel does not know: refused by the kernel, with its reason when it gives one.
            do throws(KernelError) {
                try await pair.xa.stateAdd(
                    XFRMState(
                        source: P.addressA, destination: P.addressB, spi: 0x4001, reqid: 7,
                        aead: XFRMAEAD(name: "rfc4106(nosuch(aes))", key: [UInt8](repeating: 1, count: 20), icvBits: 128)))
                Issue.record("unknown AEAD accepted")
            } catch {
                #expect(error.errno != nil, "\(error)")
                if let m = error.kernelMessage { #expect(error.description.hasSuffix(": \(m)")) }
            }
            let out = P.outPolicy(P.addressA, P.addressB, spi: Self.spiAB)
            try await pair.xa.policyAdd(out)
            do throws(KernelError) {
                try await pair.xa.policyAdd(out)
                Issue.record("duplicate policy accepted")
            } catch {
                #expect(error.errno == .exists, "\(error)")
                #expect(error.description.contains("dport 4789 dir out"), "\(error)")
            }
            try await pair.xa.policyUpdate(out)  // update is create-or-replace
            do throws(KernelError) {
                try await pair.xa.policyDelete(P.inboundPolicy(P.addressB, P.addressA, .in).id)
                Issue.record("deleting a missing policy succeeded")
            } catch {
                #expect(error.errno == .noEntry, "\(error)")
            }
            // In a batch, the failure is reported by index and the rest still applies (no transactions).
            do throws(KernelError) {
                try await pair.xa.apply([
                    .stateAdd(P.state(P.addressB, P.addressA, spi: Self.spiBA, aead: key)),
                    .stateAdd(s),
                    .policyUpdate(P.inboundPolicy(P.addressB, P.addressA, .in)),
                ])
                Issue.record("batch with a duplicate SA succeeded")
            } catch {
                guard case .batch(let failures, let applied) = error else {
                    Issue.record("\(error)")
                    return
                }
                #expect(failures.map(\.index) == [1] && applied == 2, "\(error)")
            }
            #expect(try await pair.xa.stateList().count == 2)
            #expect(try await pair.xa.policyList().count == 2)
        }
    }

    @Test func xfrmOnlyESPOnTheWireAndNothingWithoutStates() async throws {
        try await P.with("mkv-xfrm") { pair in
            let rxB = try UDPSocket(in: pair.b, bind: P.addressB, port: P.port)
            let rxA = try UDPSocket(in: pair.a, bind: P.addressA, port: P.port)
            let txA = try UDPSocket(in: pair.a, bind: P.addressA, port: 40001)
            let txB = try UDPSocket(in: pair.b, bind: P.addressB, port: 40002)
            let filter = "esp or udp port 4789"

            // Control: without XFRM the capture does see cleartext UDP 4789, so zero later means zero.
            var cap = try PacketCapture(namespace: pair.a.name!, device: "va", filter: filter)
            _ = txA.sendSequence(0..<5, to: P.addressB, port: P.port)
            #expect(UDPSocket.sequenceNumbers(rxB.drain()) == Array(0..<5))
            var lines = try cap.stop()
            #expect(PacketCapture.cleartext(lines).count == 5, "\(lines)")

            // Encrypted both ways: everything arrives, the wire carries only ESP with our SPIs.
            _ = try await pair.install(spiAB: Self.spiAB, spiBA: Self.spiBA)
            cap = try PacketCapture(namespace: pair.a.name!, device: "va", filter: filter)
            #expect(txA.sendSequence(0..<50, to: P.addressB, port: P.port) == 0)
            #expect(txB.sendSequence(0..<50, to: P.addressA, port: P.port) == 0)
            #expect(UDPSocket.sequenceNumbers(rxB.drain()) == Array(0..<50))
            #expect(UDPSocket.sequenceNumbers(rxA.drain()) == Array(0..<50))
            lines = try cap.stop()
            #expect(PacketCapture.cleartext(lines).isEmpty, "cleartext VXLAN-port UDP on the wire: \(lines)")
            #expect(PacketCapture.esp(lines, spi: Self.spiAB).count == 50, "\(lines)")
            #expect(PacketCapture.esp(lines, spi: Self.spiBA).count == 50, "\(lines)")
            // The kernel counted them on the SAs, and MeshKernel reads the counters.
            let sa = try #require(try await pair.xa.stateGet(XFRMStateID(source: P.addressA, destination: P.addressB, spi: Self.spiAB)))
            #expect(sa.counters.packets == 50 && sa.counters.outboundSequence == 50, "\(sa.counters)")
            let rx = try #require(try await pair.xb.stateGet(XFRMStateID(source: P.addressA, destination: P.addressB, spi: Self.spiAB)))
            #expect(rx.counters.packets == 50 && rx.counters.integrityFailures == 0, "\(rx.counters)")

            // Other traffic is not matched by the selector and stays cleartext (only VXLAN's port is encrypted).
            let other = try UDPSocket(in: pair.b, bind: P.addressB, port: 5000)
            cap = try PacketCapture(namespace: pair.a.name!, device: "va", filter: "udp port 5000")
            _ = txA.sendSequence(0..<3, to: P.addressB, port: 5000)
            #expect(UDPSocket.sequenceNumbers(other.drain()) == [0, 1, 2])
            #expect(try cap.stop().count == 3)

            // Fail closed: delete the SAs and keep the policies. Nothing arrives, nothing leaves in clear.
            for x in [pair.xa, pair.xb] {
                try await x.apply([
                    .stateDelete(XFRMStateID(source: P.addressA, destination: P.addressB, spi: Self.spiAB)),
                    .stateDelete(XFRMStateID(source: P.addressB, destination: P.addressA, spi: Self.spiBA)),
                ])
            }
            cap = try PacketCapture(namespace: pair.a.name!, device: "va", filter: filter)
            _ = txA.sendSequence(0..<10, to: P.addressB, port: P.port)
            _ = txB.sendSequence(0..<10, to: P.addressA, port: P.port)
            #expect(rxB.drain().isEmpty)
            #expect(rxA.drain().isEmpty)
            lines = try cap.stop()
            #expect(lines.isEmpty, "packets left without an SA: \(lines)")

            // And the receiving side refuses cleartext: with A's out policy gone A sends in clear,
            // which B's `in` policy (no SA to satisfy it) drops before the socket sees it.
            try await pair.xa.policyDelete(P.outPolicy(P.addressA, P.addressB, spi: Self.spiAB).id)
            cap = try PacketCapture(namespace: pair.a.name!, device: "va", filter: filter)
            _ = txA.sendSequence(0..<10, to: P.addressB, port: P.port)
            #expect(rxB.drain().isEmpty)
            lines = try cap.stop()
            #expect(PacketCapture.cleartext(lines).count == 10, "\(lines)")
        }
    }

    @Test func xfrmMakeBeforeBreakRotationLosesNoPacket() async throws {
        try await P.with("mkv-xfrm") { pair in
            let newSPI: UInt32 = 0x1002
            _ = try await pair.install(spiAB: Self.spiAB, spiBA: Self.spiBA)
            let rxB = try UDPSocket(in: pair.b, bind: P.addressB, port: P.port)
            let txA = try UDPSocket(in: pair.a, bind: P.addressA, port: 40001)
            let cap = try PacketCapture(namespace: pair.a.name!, device: "va", filter: "esp or udp port 4789")

            // A steady stream A → B on its own thread while the key rotates underneath it.
            final class Stream: Sendable {
                let stop = Atomic<Bool>(false)
                let sent = Atomic<Int>(0)
                let refused = Atomic<Int>(0)
                let done = DispatchSemaphore(value: 0)
            }
            let stream = Stream()
            Thread {
                var i = 0
                while !stream.stop.load(ordering: .relaxed) {
                    if !txA.send(Array("seq \(i)".utf8), to: P.addressB, port: P.port) { stream.refused.add(1, ordering: .relaxed) }
                    i += 1
                    stream.sent.store(i, ordering: .relaxed)
                    usleep(2_000)
                }
                stream.done.signal()
            }.start()
            func waitForMore(_ n: Int) async throws {
                let target = stream.sent.load(ordering: .relaxed) + n
                while stream.sent.load(ordering: .relaxed) < target { try await Task.sleep(for: .milliseconds(10)) }
            }

            try await waitForMore(100)
            // 1. The receiver adds the new inbound SA next to the old one (its in policy takes any SPI).
            let newKey = try P.randomAEAD()
            let newSA = P.state(P.addressA, P.addressB, spi: newSPI, aead: newKey)
            try await pair.xb.stateAdd(newSA)
            try await waitForMore(50)
            // 2. The sender adds it too and moves its out policy to it in one atomic update.
            try await pair.xa.apply([.stateAdd(newSA), .policyUpdate(P.outPolicy(P.addressA, P.addressB, spi: newSPI))])
            try await waitForMore(100)
            // 3. After a grace period both remove the old SA.
            let old = XFRMStateID(source: P.addressA, destination: P.addressB, spi: Self.spiAB)
            try await pair.xa.stateDelete(old)
            try await pair.xb.stateDelete(old)
            try await waitForMore(100)
            stream.stop.store(true, ordering: .relaxed)
            stream.done.wait()

            let total = stream.sent.load(ordering: .relaxed)
            let got = UDPSocket.sequenceNumbers(rxB.drain())
            #expect(stream.refused.load(ordering: .relaxed) == 0)
            #expect(
                got.count == total && Set(got) == Set(0..<total),
                "sent \(total), received \(got.count), missing \(Set(0..<total).subtracting(got).sorted().prefix(20))")
            let lines = try cap.stop()
            #expect(PacketCapture.cleartext(lines).isEmpty, "cleartext during the rotation: \(lines.prefix(5))")
            let oldESP = PacketCapture.esp(lines, spi: Self.spiAB).count, newESP = PacketCapture.esp(lines, spi: newSPI).count
            #expect(oldESP >= 150 && newESP >= 200 && oldESP + newESP == total, "old \(oldESP), new \(newESP), sent \(total)")
            #expect(try await pair.xa.stateGet(old) == nil)
            let now = try #require(try await pair.xb.stateGet(newSA.id))
            #expect(now.counters.packets == UInt64(newESP) && now.counters.integrityFailures == 0, "\(now.counters)")
        }
    }
}
