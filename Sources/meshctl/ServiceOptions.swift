import ArgumentParser
import MeshAPI

/// `-p 8000:80[/udp]`, `-p 80`, or `mode=host,target=80,published=8080,protocol=udp`.
func parsePublish(_ text: String) throws -> PortConfig {
    if text.contains("=") {
        var p = PortConfig(TargetPort: 0)
        for field in text.split(separator: ",") {
            let kv = field.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw ValidationError("invalid field '\(field)' in --publish \(text)") }
            switch kv[0] {
            case "mode": p.PublishMode = kv[1]
            case "target": p.TargetPort = try port(kv[1], text)
            case "published": p.PublishedPort = try port(kv[1], text)
            case "protocol": p.Protocol = kv[1]
            default: throw ValidationError("invalid field key '\(kv[0])' in --publish \(text)")
            }
        }
        guard p.TargetPort != 0 else { throw ValidationError("missing mandatory field 'target' in --publish \(text)") }
        return p
    }
    var rest = Substring(text)
    var proto = "tcp"
    if let slash = rest.firstIndex(of: "/") {
        proto = String(rest[rest.index(after: slash)...])
        rest = rest[..<slash]
    }
    let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    switch parts.count {
    case 1: return PortConfig(Protocol: proto, TargetPort: try port(parts[0], text))
    case 2: return PortConfig(Protocol: proto, TargetPort: try port(parts[1], text), PublishedPort: try port(parts[0], text))
    default: throw ValidationError("invalid --publish \(text): expected [PUBLISHED:]TARGET[/PROTOCOL]")
    }
}

private func port(_ s: String, _ whole: String) throws -> UInt32 {
    guard let n = UInt32(s), n <= 65535 else { throw ValidationError("invalid port '\(s)' in --publish \(whole)") }
    return n
}

/// The `--update-*` flags of create and update.
struct UpdatePolicyOptions: ParsableArguments {
    @Option(help: "Delay between updates (ns|us|ms|s|m|h).") var updateDelay: GoDuration?
    @Option(help: "Maximum number of tasks updated simultaneously (0 to update all at once).") var updateParallelism: UInt64?
    @Option(help: "Action on update failure (pause, continue, rollback).") var updateFailureAction: String?
    @Option(help: "Update order (start-first, stop-first).") var updateOrder: String?
    @Option(help: "Duration after each task update to monitor for failure (ns|us|ms|s|m|h).") var updateMonitor: GoDuration?

    var isEmpty: Bool {
        updateDelay == nil && updateParallelism == nil && updateFailureAction == nil && updateOrder == nil && updateMonitor == nil
    }

    /// Docker's defaults with the given flags applied on top of `base`.
    func apply(to base: UpdateConfig?) -> UpdateConfig? {
        if isEmpty { return base }
        var c = base ?? UpdateConfig(Parallelism: 1, FailureAction: "pause", Monitor: .seconds(5), MaxFailureRatio: 0, Order: "stop-first")
        if let updateDelay { c.Delay = updateDelay.nanoseconds }
        if let updateParallelism { c.Parallelism = updateParallelism }
        if let updateFailureAction { c.FailureAction = updateFailureAction }
        if let updateOrder { c.Order = updateOrder }
        if let updateMonitor { c.Monitor = updateMonitor.nanoseconds }
        return c
    }
}
