import CoreMetrics
import NIOCore

/// What the resolver counts, through swift-metrics: `meshd daemon --metrics-addr` exports them to
/// Prometheus; with no backend bootstrapped each is a no-op call. Made once per server and
/// shared by its handlers (the handles are thread-safe), so counting costs no lookup by name.
struct DNSMetrics: Sendable {
    enum Source: String { case local, upstream }

    private let queries: [DNSQueryProcessor.Transport: Counter]
    private let dropped = Counter(label: "meshd_dns_dropped_total")
    private let forwards = Counter(label: "meshd_dns_forwards_total")
    private let forwardFailures = Counter(label: "meshd_dns_forward_failures_total")
    /// By rcode of the reply sent (NOERROR, NXDOMAIN, SERVFAIL, FORMERR, …).
    private let answers: [Counter]
    private let latency: [Source: Timer]

    static let rcodeNames = ["noerror", "formerr", "servfail", "nxdomain", "notimp", "refused"]

    init() {
        queries = [
            .udp: Counter(label: "meshd_dns_queries_total", dimensions: [("transport", "udp")]),
            .tcp: Counter(label: "meshd_dns_queries_total", dimensions: [("transport", "tcp")]),
        ]
        answers = (Self.rcodeNames + ["other"]).map { Counter(label: "meshd_dns_answers_total", dimensions: [("rcode", $0)]) }
        latency = [
            .local: Timer(label: "meshd_dns_answer_seconds", dimensions: [("source", "local")]),
            .upstream: Timer(label: "meshd_dns_answer_seconds", dimensions: [("source", "upstream")]),
        ]
    }

    func received(_ transport: DNSQueryProcessor.Transport) { queries[transport]?.increment() }
    func drop() { dropped.increment() }
    func forwarded() { forwards.increment() }

    /// A reply went out: counted by its rcode (the low four bits of byte 3) and timed from when
    /// its query was read. `upstreamFailed`: the forwarder had no answer and a SERVFAIL went out.
    func replied(_ reply: [UInt8], source: Source, since start: NIODeadline, upstreamFailed: Bool = false) {
        if upstreamFailed { forwardFailures.increment() }
        let rcode = reply.count > 3 ? Int(reply[3] & 0x0F) : -1
        answers[rcode >= 0 && rcode < Self.rcodeNames.count ? rcode : Self.rcodeNames.count].increment()
        latency[source]?.recordNanoseconds((NIODeadline.now() - start).nanoseconds)
    }
}
