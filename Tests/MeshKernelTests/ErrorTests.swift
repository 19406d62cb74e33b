// KernelError text and accessors, sysctl key validation, interface name validation.
@testable import MeshKernel
import Testing

@Suite struct KernelErrorTests {
    @Test func kernelErrorDescription() {
        let e = KernelError.kernel(
            operation: "ip link add vxlan0 type vxlan", errno: .exists,
            message: "VXLAN: A VXLAN device with the specified VNI already exists")
        #expect(e.description.contains("ip link add vxlan0 type vxlan"))
        #expect(e.description.contains("File exists"))
        #expect(e.description.contains("errno 17"))
        #expect(e.description.contains("VXLAN: A VXLAN device with the specified VNI already exists"))
        #expect(
            e.description
                == "ip link add vxlan0 type vxlan: File exists (errno 17): VXLAN: A VXLAN device with the specified VNI already exists")
        #expect(e.errno == .exists)
        #expect(e.kernelMessage == "VXLAN: A VXLAN device with the specified VNI already exists")
    }

    @Test func kernelErrorWithoutMessage() {
        let e = KernelError.kernel(operation: "ip route del 10.0.0.0/8", errno: Errno(3), message: nil)
        #expect(e.description == "ip route del 10.0.0.0/8: No such process (errno 3)")
        #expect(e.kernelMessage == nil)
        #expect(e.errno?.rawValue == 3)
    }

    @Test func otherCases() {
        let sys = KernelError.system(call: "setns", errno: .notPermitted)
        #expect(sys.description == "setns: Operation not permitted (errno 1)")
        #expect(sys.errno == .notPermitted && sys.kernelMessage == nil)
        let nl = KernelError.libnl(operation: "ip link add x", code: 5, text: "Out of memory")
        #expect(nl.description.contains("ip link add x") && nl.description.contains("libnl error 5"))
        #expect(nl.errno == nil && nl.kernelMessage == nil)
        #expect(KernelError.timeout(operation: "ip link show").description.contains("ip link show"))
        #expect(KernelError.dumpInterrupted(operation: "ip route show").description.contains("NLM_F_DUMP_INTR"))
        #expect(KernelError.malformedReply(operation: "op", detail: "x").description == "op: malformed reply: x")
        #expect(KernelError.invalidArgument("mtu 0").description == "invalid argument: mtu 0")
        #expect(KernelError.invalidArgument("mtu 0").errno == nil)
        #expect(Errno(99999).description.contains("99999"))
    }

    @Test func batchListsFailures() {
        let f0 = KernelError.BatchFailure(
            index: 0, error: .kernel(operation: "ip neigh replace 10.0.0.3", errno: .noDevice, message: "no such device"))
        let f3 = KernelError.BatchFailure(
            index: 3, error: .kernel(operation: "bridge fdb append 02:00:00:00:00:01", errno: .invalidArgument, message: nil))
        let e = KernelError.batch(failures: [f0, f3], applied: 5)
        #expect(e.description.hasPrefix("2 of 7 requests failed: "))
        #expect(e.description.contains("#0: ip neigh replace 10.0.0.3: No such device (errno 19): no such device"))
        #expect(e.description.contains("#3: bridge fdb append 02:00:00:00:00:01: Invalid argument (errno 22)"))
        #expect(!e.description.contains("…"))
        #expect(e.errno == .noDevice)  // the first failure's
        #expect(e.kernelMessage == "no such device")
    }

    @Test func longBatchIsElided() {
        let failures = (0..<7).map { KernelError.BatchFailure(index: $0, error: .kernel(operation: "op\($0)", errno: .busy, message: nil)) }
        let d = KernelError.batch(failures: failures, applied: 0).description
        #expect(d.hasPrefix("7 of 7 requests failed: "))
        #expect(d.contains("#4: op4") && !d.contains("#5: op5"))
        #expect(d.hasSuffix("; …"))
        #expect(KernelError.batch(failures: [], applied: 3).errno == nil)
    }
}

@Suite struct SysctlPathTests {
    @Test func acceptsNetKeys() throws {
        #expect(try NetworkNamespace.sysctlPath("net.ipv4.conf.eth0.rp_filter") == "/proc/sys/net/ipv4/conf/eth0/rp_filter")
        #expect(try NetworkNamespace.sysctlPath("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward")
        // sysctl(8) spelling for a device with a dot in its name (eth0.10).
        #expect(try NetworkNamespace.sysctlPath("net.ipv4.conf.eth0/10.rp_filter") == "/proc/sys/net/ipv4/conf/eth0.10/rp_filter")
    }

    @Test(arguments: [
        "kernel.hostname", "net..x", "net.ipv4/../x", "net", "net.ipv4", "", "net.ipv4.", ".net.ipv4.x",
        "vm.net.x",
    ])
    func rejectsOthers(key: String) {
        #expect(throws: KernelError.self) { try NetworkNamespace.sysctlPath(key) }
    }
}

@Suite struct InterfaceNameTests {
    @Test(arguments: ["eth0", "a", "vxlan-4097", "0123456789abcde", "br_mesh.10"])
    func accepts(name: String) throws {
        try LinkMessages.validateName(name)
    }

    @Test(arguments: ["", "0123456789abcdef", "a/b", "a b", ".", "..", "a:b", "tab\tx", "nl\n", "ääääääää"])
    func rejects(name: String) {
        #expect(throws: KernelError.self) { try LinkMessages.validateName(name) }
    }

    /// nla_put_string copies up to the first NUL, so "eth0\0x" would be created as "eth0".
    @Test func rejectsEmbeddedNUL() {
        #expect(throws: KernelError.self) { try LinkMessages.validateName("eth0\u{0}x") }
    }
}
