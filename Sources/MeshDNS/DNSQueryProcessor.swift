/// Turns one query's bytes into what the server does with it: a reply, a drop, or a forward.
/// Pure (no sockets), so every protocol rule here is unit-tested byte for byte.
public struct DNSQueryProcessor: Sendable {
    public enum Transport: Sendable { case udp, tcp }

    public enum Action: Sendable, Equatable {
        case reply([UInt8])
        /// Not even a header to answer to, or a response sent to us: say nothing.
        case drop
        /// Not a cluster name: ask upstream, then pass the reply through `relay`.
        case forward(DNSMessage)
    }

    public var resolver: DNSResolver
    /// What we advertise in OPT: 1232 fits any path's MTU without fragmentation (DNS flag day 2020).
    public var payloadSize: UInt16 = 1232

    public init(resolver: DNSResolver = DNSResolver()) { self.resolver = resolver }

    public func process<G: RandomNumberGenerator>(
        _ bytes: [UInt8], transport: Transport, store: DNSRecordStore,
        networks: [String], using rng: inout G
    ) -> Action {
        var r = DNSWireReader(bytes)
        guard let header = try? DNSHeader(from: &r), !header.isResponse else { return .drop }
        let query: DNSMessage
        do {
            query = try DNSMessage(decoding: bytes)
        } catch {
            return .reply(errorReply(header, question: nil, edns: nil, .formErr, transport))
        }
        let question = query.questions.first
        guard header.opcode == DNSOpcode.query else {
            return .reply(errorReply(header, question: question, edns: query.edns, .notImp, transport))
        }
        guard query.questions.count == 1, let q = question, query.answers.isEmpty, query.authority.isEmpty else {
            return .reply(errorReply(header, question: question, edns: query.edns, .formErr, transport))
        }
        if let e = query.edns, e.version > 0 {
            return .reply(errorReply(header, question: q, edns: e, .badVers, transport))
        }
        let answer = store.read { index in resolver.resolve(q, in: index, networks: networks, using: &rng) }
        guard let answer else { return .forward(query) }
        var reply = DNSMessage(header: replyHeader(header), questions: [q], answers: answer.answers, additional: answer.additional)
        reply.header.authoritative = true
        if query.edns != nil { reply.edns = DNSEDNS(payloadSize: payloadSize) }
        return .reply(reply.encode(limit: limit(for: query.edns, transport)))
    }

    /// Fits an upstream's reply to the asker: its ID, and its size limit (TC when cut).
    public func relay(_ upstream: DNSMessage, to query: DNSMessage, transport: Transport) -> [UInt8] {
        var m = upstream
        m.header.id = query.header.id
        if query.edns == nil { m.edns = nil } else if m.edns != nil { m.edns!.payloadSize = payloadSize }
        return m.encode(limit: limit(for: query.edns, transport))
    }

    /// SERVFAIL for a query no upstream answered.
    public func serverFailure(for query: DNSMessage, transport: Transport) -> [UInt8] {
        errorReply(query.header, question: query.questions.first, edns: query.edns, .servFail, transport)
    }

    func limit(for edns: DNSEDNS?, _ transport: Transport) -> Int {
        switch transport {
        case .tcp: DNSMessage.maxSize
        case .udp: Int(min(max(edns?.payloadSize ?? 512, 512), 4096))
        }
    }

    private func replyHeader(_ h: DNSHeader) -> DNSHeader {
        DNSHeader(
            id: h.id, isResponse: true, opcode: h.opcode, recursionDesired: h.recursionDesired,
            recursionAvailable: true, checkingDisabled: h.checkingDisabled)
    }

    private func errorReply(
        _ h: DNSHeader, question: DNSQuestion?, edns: DNSEDNS?, _ code: DNSRCode,
        _ transport: Transport
    ) -> [UInt8] {
        var m = DNSMessage(header: replyHeader(h), questions: question.map { [$0] } ?? [])
        if edns != nil || code.rawValue > 15 { m.edns = DNSEDNS(payloadSize: payloadSize) }
        m.rcode = code
        return m.encode(limit: limit(for: edns, transport))
    }
}
