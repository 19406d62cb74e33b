import ArgumentParser
import Foundation
import MeshDaemon
import MeshRuntime
import MeshTestbed

/// Task start latency on one node, the two drivers side by side: from `TaskRuntime.start` (what
/// the agent calls once an assignment names a new task: namespace, files, driver) until the
/// task's process listens in its namespace (what readiness waits for before a balancer gets it).
/// - process driver: the host's busybox `httpd -f -p 8000` (the catalog's busybox);
/// - OCI driver: the same command in a runc container of the busybox image scripts/build-images
///   made, pulled beforehand from a local registry (the bench times the start, not the pull).
/// Rounds alternate the sides; the ratio is OCI / process of the medians.
struct TaskStartBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "taskstart",
        abstract: "Task start → listening: runc container (image pulled) vs host process, side by side on one node.")

    @OptionGroup var options: BenchOptions
    @Option(help: "Starts timed per driver.") var starts = 20

    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func run() async throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark makes namespaces and containers: run it as root") }
        let n = options.quick ? 3 : starts
        let registry = try await LocalRegistry.start(tag: "meshbench-registry")
        defer { registry.stop() }
        let built = try Exec.check([Self.repoRoot + "/scripts/build-images", "--registry", registry.address, "busybox"])
        guard let line = built.split(separator: "\n").first(where: { $0.hasPrefix("pushed ") }) else {
            throw ValidationError("scripts/build-images pushed nothing:\n\(built)")
        }
        let reference = String(line.split(separator: " ")[1])
        let dir = "/tmp/meshbench-taskstart-\(getpid())"
        let node = "mbts\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let images = try NodeImages(dataRoot: dir, options: .init(dockerHub: "http://127.0.0.1:9"))
        let runtime = try TaskRuntime(nodeID: node, dataRoot: dir, meshd: DataplaneLab.locateMeshd(), images: images)
        var started: [String] = []
        defer {
            let done = DispatchSemaphore(value: 0)
            let r = runtime, ids = started
            Task {
                for id in ids { await r.remove(id) }
                _ = await r.removeLeftovers()
                await images.shutdown()
                done.signal()
            }
            done.wait()
            try? FileManager.default.removeItem(atPath: dir)
        }
        _ = try await images.image(for: reference)
        print("taskstart: one node, \(n) starts per driver, alternating; busybox httpd -f -p 8000 (image pulled beforehand)")

        let command = ["httpd", "-f", "-p", "8000"]
        var process: [Double] = [], oci: [Double] = []
        for i in 0..<(n + 1) {
            for side in ["process", "oci"] {
                let id = "mbts\(side.prefix(1))\(i)"
                let launch =
                    side == "process"
                    ? TaskLaunch(id: id, image: "busybox", args: command)
                    : TaskLaunch(
                        id: id, image: reference, args: command,
                        container: ContainerOptions(serviceName: "mbts", slot: "\(i)", args: command))
                started.append(id)
                let t0 = ContinuousClock.now
                let r = try await runtime.start(launch)
                guard r.driver == side else { throw ValidationError("\(id) ran on the \(r.driver) driver, not \(side)") }
                let path = "/run/netns/\(r.namespace)"
                while !TaskReadiness.isListening(pid: r.pid, namespacePath: path) {
                    guard r.process.current == .running, ContinuousClock.now - t0 < .seconds(30) else {
                        throw ValidationError("\(side) task \(id) never listened: \(r.process.current)\n\(await runtime.log(id))")
                    }
                    try await Task.sleep(for: .microseconds(200))
                }
                let took = seconds(ContinuousClock.now - t0)
                // The first of each side warms caches (binary, image layers): not counted.
                if i > 0 { if side == "process" { process.append(took) } else { oci.append(took) } }
                await runtime.remove(id)
                started.removeAll { $0 == id }
            }
        }
        let ratio = median(oci) / max(median(process), 1e-9)
        print(
            String(
                format:
                    "  process driver: p50 %.1f ms  max %.1f ms    OCI driver (runc): p50 %.1f ms  max %.1f ms    ratio OCI/process %.2f×",
                median(process) * 1e3, (process.max() ?? 0) * 1e3, median(oci) * 1e3, (oci.max() ?? 0) * 1e3, ratio))
        var out = BenchResults(
            "taskstart", quick: options.quick,
            [
                "process_p50_s": median(process), "oci_p50_s": median(oci), "ratio": ratio, "starts": n,
                "process_samples_s": process, "oci_samples_s": oci,
            ])
        out.metric("process driver: start → listening, p50", median(process) * 1e3, "ms")
        out.metric("OCI driver: start → listening, p50", median(oci) * 1e3, "ms")
        out.metric("ratio OCI / process (p50)", ratio, "×")
        try out.write(to: options.json)
    }
}
