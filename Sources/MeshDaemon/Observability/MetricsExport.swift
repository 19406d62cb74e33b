import MeshAgent
import MeshGossip
import MeshValues
import Prometheus

/// `meshd daemon --metrics-addr`: GET /metrics answers what swift-metrics collected in the
/// registry (DNS, dataplane applies, the agent, the manager) followed by what is read at scrape
/// time from its owners: the kernel's per-VIP and per-port counters (the traffic meter's sets,
/// no ruleset walk) and the gossip node's own counters.
public struct MetricsExport: Sendable {
    public let registry: PrometheusCollectorRegistry
    public init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    public func render(_ daemon: Daemon) async -> [UInt8] {
        var out = registry.emitToBuffer()
        out += Array(await daemon.liveMetrics().utf8)
        return out
    }
}

extension NodePlane {
    /// The scrape-time families: traffic through this node's VIPs and published ports, and gossip.
    func liveMetrics() async -> String {
        var p = PrometheusText()
        let traffic = await agent.traffic().sorted { "\($0.service)\($0.entry)" < "\($1.service)\($1.entry)" }
        func labels(_ t: ServiceTraffic) -> [(String, String)] {
            switch t.entry {
            case .vip(let a, let network): [("service", t.service), ("network", network), ("vip", "\(a)")]
            case .published(let proto, let port): [("service", t.service), ("protocol", proto.rawValue), ("port", "\(port)")]
            }
        }
        let vips = traffic.filter { if case .vip = $0.entry { true } else { false } }
        let ports = traffic.filter { if case .published = $0.entry { true } else { false } }
        for (set, prefix, what) in [
            (vips, "meshd_vip", "this node's tasks sent to the service's VIP"),
            (ports, "meshd_published", "arrived on this node for the published port"),
        ] {
            p.family(
                "\(prefix)_connections_total", .counter, help: "New connections \(what).",
                set.map { .init(labels: labels($0), value: $0.count.connections) })
            p.family(
                "\(prefix)_packets_total", .counter, help: "Packets \(what).",
                set.map { .init(labels: labels($0), value: $0.count.packets) })
            p.family(
                "\(prefix)_bytes_total", .counter, help: "Bytes \(what).", set.map { .init(labels: labels($0), value: $0.count.bytes) })
        }

        let stats = await gossip.stats
        var byState: [String: UInt64] = ["alive": 0, "suspect": 0, "dead": 0, "left": 0]
        for m in await gossip.members { byState["\(m.state)", default: 0] += 1 }
        p.family(
            "meshd_gossip_members", .gauge, help: "Members this node knows, by state.",
            byState.keys.sorted().map { .init(labels: [("state", $0)], value: byState[$0]!) })
        func c(_ v: Int) -> UInt64 { UInt64(max(0, v)) }
        p.family("meshd_gossip_packets_sent_total", .counter, help: "UDP gossip packets sent.", value: stats.packetsSent)
        p.family("meshd_gossip_packets_received_total", .counter, help: "UDP gossip packets received.", value: stats.packetsReceived)
        p.family(
            "meshd_gossip_bytes_total", .counter, help: "Gossip bytes, UDP and TCP.",
            [
                .init(labels: [("direction", "sent")], value: c(stats.bytesSent + stats.streamBytesSent)),
                .init(labels: [("direction", "received")], value: c(stats.bytesReceived)),
            ])
        p.family(
            "meshd_gossip_dropped_total", .counter, help: "Gossip packets dropped, by cause.",
            [
                .init(labels: [("cause", "wrong_label")], value: c(stats.droppedWrongLabel)),
                .init(labels: [("cause", "undecryptable")], value: c(stats.droppedUndecryptable)),
                .init(labels: [("cause", "plaintext")], value: c(stats.droppedPlaintext)),
                .init(labels: [("cause", "malformed")], value: c(stats.droppedMalformed)),
            ])
        p.family("meshd_gossip_suspicions_total", .counter, help: "Members this node came to suspect.", value: stats.suspicions)
        p.family("meshd_gossip_refutations_total", .counter, help: "Suspicions of this node it refuted.", value: stats.refutations)
        p.family("meshd_gossip_probes_failed_total", .counter, help: "Probes with no ack, direct or indirect.", value: stats.probesFailed)
        return p.text
    }
}
