import Foundation
import MeshKernel
import Synchronization

public struct CaptureFailure: Error, CustomStringConvertible { public var description: String }

/// tcpdump on one device of a namespace, writing a pcap file, read back with `tcpdump -n -r`.
public final class PacketCapture {
    let process = Process()
    public let file: String
    private let errors = LockedText()

    final class LockedText: Sendable {
        private let text = Mutex("")
        func append(_ s: String) { text.withLock { $0 += s } }
        var value: String { text.withLock { $0 } }
    }

    public init(namespace: String, device: String, filter: String) throws {
        file = NSTemporaryDirectory() + "meshd-xfrm-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).pcap"
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        process.arguments = ["netns", "exec", namespace, "tcpdump", "-n", "--immediate-mode", "-i", device, "-U", "-w", file, filter]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let errors = self.errors
        err.fileHandleForReading.readabilityHandler = { h in
            let d = h.availableData
            errors.append(String(decoding: d, as: UTF8.self))
        }
        try process.run()
        // tcpdump says "listening on" once the capture is open; under TCG that takes a moment.
        let deadline = Date().addingTimeInterval(30)
        while !errors.value.contains("listening on") {
            guard process.isRunning, Date() < deadline else {
                kill(process.processIdentifier, SIGKILL)
                throw CaptureFailure(description: "tcpdump on \(device) did not start: \(errors.value)")
            }
            usleep(20_000)
        }
    }

    /// Stops the capture and returns tcpdump's one line per packet.
    public func stop() throws -> [String] {
        usleep(500_000)  // let the last packets reach the capture (immediate mode: no 1 s ring timeout)
        // SIGKILL: the test runner's threads block SIGINT/SIGTERM and spawned children inherit
        // that mask, so tcpdump would never see them. -U wrote every packet out already.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        defer { unlink(file) }
        return try Exec.check(["tcpdump", "-n", "-r", file]).split(separator: "\n").map(String.init)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        unlink(file)
    }

    /// Lines of cleartext UDP to the VXLAN port (tcpdump prints `a.b.c.d.4789:`).
    public static func cleartext(_ lines: [String], port: UInt16 = 4789) -> [String] { lines.filter { $0.contains(".\(port):") } }
    /// Lines of ESP packets, optionally with one SPI.
    public static func esp(_ lines: [String], spi: UInt32? = nil) -> [String] {
        lines.filter { $0.contains("ESP(spi=" + (spi.map { XFRMState.spiText($0) } ?? "")) }
    }
}
