import Foundation
import Testing
@testable import MeshKernel
import MeshTestbed

@Suite("network namespaces")
struct NamespaceTests {
    @Test func createdNamespaceIsVisibleToIPNetnsAndDeleted() throws {
        guard getuid() == 0 else { throw NotRoot() }
        let name = "mkt-ns-\(getpid())-create"
        let ns = try NetworkNamespace.create(named: name)
        #expect(NetworkNamespace.exists(named: name))
        let listed = try Exec.json(["ip", "-j", "netns", "list"]) as? [[String: Any]] ?? []
        #expect(listed.contains { $0["name"] as? String == name })
        // A fresh namespace has only lo, and it is down.
        let links = try Exec.json(["ip", "-n", name, "-j", "link", "show"]) as? [[String: Any]] ?? []
        #expect(links.map { $0["ifname"] as? String } == ["lo"])
        #expect(ns.name == name)
        try NetworkNamespace.delete(named: name)
        #expect(!NetworkNamespace.exists(named: name))
        let after = try Exec.json(["ip", "-j", "netns", "list"]) as? [[String: Any]] ?? []
        #expect(!after.contains { $0["name"] as? String == name })
    }

    @Test func duplicateCreateFailsWithEEXIST() throws {
        guard getuid() == 0 else { throw NotRoot() }
        let group = NamespaceGroup(tag: "mkt-dup")
        defer { group.destroy() }
        _ = try group.create("a")
        #expect(throws: KernelError.system(call: "create \(NetworkNamespace.runDirectory)/\(group.name("a"))", errno: .exists)) {
            _ = try NetworkNamespace.create(named: group.name("a"))
        }
    }

    @Test func badNamesAreRejectedBeforeTouchingTheSystem() {
        for bad in ["", "a/b", "..", String(repeating: "x", count: 300)] {
            #expect(throws: KernelError.self) { _ = try NetworkNamespace.create(named: bad) }
        }
    }

    @Test func openByNamePathAndPidSeeTheSameNamespace() async throws {
        try await withScratch { s in
            let byPath = try NetworkNamespace.open(path: "\(NetworkNamespace.runDirectory)/\(s.name)")
            let byName = try NetworkNamespace.open(named: s.name)
            // A device created through one handle is visible through a handle on the other opening.
            try await NetlinkHandle(namespace: byPath).linkAdd(LinkSpec(name: "probe0", kind: .bridge))
            let seen = try await NetlinkHandle(namespace: byName).linkList().map(\.name)
            #expect(seen.contains("probe0"))
            // open(pid:) of our own process is the host namespace: it must NOT see probe0.
            let own = try NetworkNamespace.open(pid: getpid())
            var st1 = stat(), st2 = stat()
            fstat(own.fd, &st1)
            fstat(byName.fd, &st2)
            #expect(st1.st_ino != st2.st_ino)
            let current = try NetworkNamespace.current()
            var st3 = stat()
            fstat(current.fd, &st3)
            #expect(st3.st_ino == st1.st_ino)
        }
    }

    @Test func runExecutesInsideTheNamespaceAndLeavesCallerThreadAlone() async throws {
        try await withScratch { s in
            var before = stat(), inside = stat(), after = stat()
            stat("/proc/thread-self/ns/net", &before)
            let insideIno = try s.ns.run { () throws(KernelError) -> UInt in
                var st = stat()
                stat("/proc/thread-self/ns/net", &st)
                return st.st_ino
            }
            stat("\(NetworkNamespace.runDirectory)/\(s.name)", &inside)
            stat("/proc/thread-self/ns/net", &after)
            #expect(insideIno == inside.st_ino)
            #expect(after.st_ino == before.st_ino)
            #expect(insideIno != before.st_ino)
        }
    }

    @Test func sysctlsArePerNamespace() async throws {
        try await withScratch { s in
            try s.ns.setSysctl("net.ipv4.ip_forward", "1")
            #expect(try s.ns.sysctl("net.ipv4.ip_forward") == "1")
            let viaTool = try Exec.check(["ip", "netns", "exec", s.name, "cat", "/proc/sys/net/ipv4/ip_forward"])
            #expect(viaTool.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
            try await s.nl.linkAdd(LinkSpec(name: "d0", kind: .bridge))
            try s.ns.setSysctl("net.ipv4.conf.d0.proxy_arp", "1")
            try s.ns.setSysctl("net.ipv4.conf.all.rp_filter", "0")
            #expect(try s.ns.sysctl("net.ipv4.conf.d0.proxy_arp") == "1")
            #expect(try s.ns.sysctl("net.ipv4.conf.all.rp_filter") == "0")
            // The host's value is untouched by any of this.
            let host = try String(contentsOfFile: "/proc/sys/net/ipv4/conf/all/rp_filter", encoding: .utf8)
            #expect(!host.isEmpty)
            // Missing device: a typed system error with ENOENT.
            #expect(throws: KernelError.system(call: "open(/proc/sys/net/ipv4/conf/nope0/proxy_arp)", errno: .noEntry)) {
                try s.ns.setSysctl("net.ipv4.conf.nope0.proxy_arp", "1")
            }
            #expect(throws: KernelError.self) { try s.ns.setSysctl("kernel.hostname", "x") }
        }
    }
}
