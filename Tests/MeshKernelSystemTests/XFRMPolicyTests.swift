import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

/// XFRM policies need no crypto, so the host kernel can hold them (its SAs need AES-GCM, which only
/// the VM lane's kernel has: see MeshKernelVMTests/XFRMTests). Checked with `ip xfrm policy`.
@Suite("XFRM policies")
struct XFRMPolicyTests {
    static let local = IPAddress("198.18.20.1")!
    static let remote = IPAddress("198.18.20.2")!

    @Test func policiesInOutFwdAddListUpdateDelete() async throws {
        try await withScratch("mkt-xfrm") { s in
            let x = try XFRMHandle(namespace: s.ns)
            let out = XFRMPolicy(
                selector: .vxlan(from: Self.local, to: Self.remote), direction: .out,
                templates: [XFRMTemplate(source: Self.local, destination: Self.remote, reqid: 9, spi: 0x500)], priority: 50)
            let inbound = XFRMPolicy(
                selector: .vxlan(from: Self.remote, to: Self.local), direction: .in,
                templates: [XFRMTemplate(source: Self.remote, destination: Self.local, reqid: 9)], priority: 50)
            var forward = inbound
            forward.direction = .forward
            try await x.apply([.policyAdd(out), .policyAdd(inbound), .policyAdd(forward)])

            let text = try Exec.check(["ip", "-n", s.name, "xfrm", "policy"])
            #expect(text.contains("src 198.18.20.1/32 dst 198.18.20.2/32 proto udp dport 4789 \n\tdir out priority 50"), "\(text)")
            #expect(text.contains("proto esp spi 0x00000500 reqid 9 mode transport"), "\(text)")
            #expect(text.contains("dir in priority 50") && text.contains("dir fwd priority 50"), "\(text)")
            #expect(Set(try await x.policyList().map(\.policy)) == [out, inbound, forward])

            // The out template moves to a new SPI in one replace.
            var moved = out
            moved.templates[0].spi = 0x501
            try await x.policyUpdate(moved)
            #expect(try await x.policyGet(out.id)?.policy == moved)
            #expect(try Exec.check(["ip", "-n", s.name, "xfrm", "policy"]).contains("spi 0x00000501"))

            await expectKernelError(.exists) { try await x.policyAdd(inbound) }
            try await x.apply([.policyDelete(out.id), .policyDelete(inbound.id), .policyDelete(forward.id)])
            #expect(try await x.policyList().isEmpty)
            #expect(try Exec.check(["ip", "-n", s.name, "xfrm", "policy"]).isEmpty)
            await expectKernelError(.noEntry) { try await x.policyDelete(out.id) }
            #expect(try await x.policyGet(out.id) == nil)
        }
    }
}
