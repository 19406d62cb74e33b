import MeshKernel

/// Answers one question from the record tables for an asker on `networks`. Returns nil when the
/// name is not the cluster's, so the caller forwards it upstream.
public struct DNSResolver: Sendable {
    /// Seconds clients may cache an answer. Short, because a task's address dies with the task.
    public var ttl: UInt32

    public static let defaultTTL: UInt32 = 5

    public init(ttl: UInt32 = DNSResolver.defaultTTL) { self.ttl = ttl }

    public struct Answer: Sendable, Equatable {
        public var answers: [DNSResourceRecord] = []
        public var additional: [DNSResourceRecord] = []
    }

    public func resolve<G: RandomNumberGenerator>(
        _ q: DNSQuestion, in index: borrowing DNSRecordIndex,
        networks: [String], using rng: inout G
    ) -> Answer? {
        guard q.qclass == .internet || q.qclass == .any else { return nil }
        switch q.type {
        case .ptr:
            guard let ip = ReverseName.address(from: q.name), let names = index.names(for: ip, networks: networks) else {
                return nil
            }
            return Answer(answers: names.shuffled(using: &rng).map { rr(q.name, .ptr, .ptr($0)) })
        case .srv:
            return srv(q, index, networks, &rng)
        default:
            guard let addrs = index.addresses(for: q.name, networks: networks) else { return nil }
            // A name we own but with no record of the asked type is NODATA: NOERROR, no answer
            // (never forwarded, or an upstream could answer for a cluster name).
            return Answer(answers: records(q.name, addrs, type: q.type).shuffled(using: &rng))
        }
    }

    private func srv<G: RandomNumberGenerator>(
        _ q: DNSQuestion, _ index: borrowing DNSRecordIndex,
        _ networks: [String], _ rng: inout G
    ) -> Answer? {
        let labels = q.name.labels
        guard labels.count >= 3, labels[0].first == UInt8(ascii: "_"), labels[1].first == UInt8(ascii: "_") else {
            // Not _port._proto.name: NODATA if it is one of ours, else upstream's.
            return index.addresses(for: q.name, networks: networks).map { _ in Answer() }
        }
        let port = String(decoding: labels[0].dropFirst(), as: UTF8.self)
        let proto = String(decoding: labels[1].dropFirst(), as: UTF8.self)
        let service = q.name.dropping(labels: 2)
        guard let targets = index.srv(service: service, portLabel: port, proto: proto, networks: networks) else { return nil }
        var out = Answer()
        var seen = Set<DNSName>()
        for t in targets.shuffled(using: &rng) {
            out.answers.append(rr(q.name, .srv, .srv(priority: 0, weight: 0, port: t.port, target: t.target)))
            if seen.insert(t.target).inserted {
                out.additional += records(t.target, t.addresses, type: .any)
            }
        }
        return out
    }

    private func records(_ name: DNSName, _ addrs: [IPAddress], type: DNSType) -> [DNSResourceRecord] {
        addrs.compactMap { ip in
            switch (ip.isIPv4, type) {
            case (true, .a), (true, .any): rr(name, .a, .a(ip))
            case (false, .aaaa), (false, .any): rr(name, .aaaa, .aaaa(ip))
            default: nil
            }
        }
    }

    private func rr(_ name: DNSName, _ type: DNSType, _ data: DNSRData) -> DNSResourceRecord {
        DNSResourceRecord(name: name, type: type, ttl: ttl, data: data)
    }
}
