/// A whole DNS message. The OPT pseudo-record is lifted out of the additional section into `edns`.
public struct DNSMessage: Sendable, Hashable {
    public var header: DNSHeader
    public var questions: [DNSQuestion] = []
    public var answers: [DNSResourceRecord] = []
    public var authority: [DNSResourceRecord] = []
    public var additional: [DNSResourceRecord] = []
    public var edns: DNSEDNS?

    public init(
        header: DNSHeader, questions: [DNSQuestion] = [], answers: [DNSResourceRecord] = [],
        authority: [DNSResourceRecord] = [], additional: [DNSResourceRecord] = [], edns: DNSEDNS? = nil
    ) {
        self.header = header
        self.questions = questions
        self.answers = answers
        self.authority = authority
        self.additional = additional
        self.edns = edns
    }

    /// The full 12-bit response code (header bits plus the EDNS extension).
    public var rcode: DNSRCode {
        get { DNSRCode(rawValue: UInt16(edns?.extendedRCode ?? 0) << 4 | UInt16(header.rcode)) }
        set {
            header.rcode = UInt8(newValue.rawValue & 0xF)
            if edns != nil { edns!.extendedRCode = UInt8(truncatingIfNeeded: newValue.rawValue >> 4) }
        }
    }

    public static let maxSize = 65535

    /// Decodes a message; throws on anything malformed, including bytes after the last record,
    /// an OPT anywhere but the additional section, or more than one OPT.
    public init(decoding bytes: [UInt8]) throws(DNSWireError) {
        guard bytes.count <= Self.maxSize else { throw .messageTooLarge(bytes.count) }
        var r = DNSWireReader(bytes)
        header = try DNSHeader(from: &r)
        // Each question takes at least 5 bytes and each record 11: refuse counts that cannot fit
        // before looping, so a 12-byte header claiming 65535 records costs nothing.
        let minimum = Int(header.qdCount) * 5 + (Int(header.anCount) + Int(header.nsCount) + Int(header.arCount)) * 11
        guard minimum <= r.remaining else { throw .tooManyRecords(minimum) }
        for _ in 0..<header.qdCount { questions.append(try DNSQuestion(from: &r)) }
        for _ in 0..<header.anCount { answers.append(try Self.record(&r, optAllowed: false)) }
        for _ in 0..<header.nsCount { authority.append(try Self.record(&r, optAllowed: false)) }
        for _ in 0..<header.arCount {
            let rr = try Self.record(&r, optAllowed: true)
            if rr.type == .opt {
                guard edns == nil, rr.name == .root else { throw .badRDataLength(type: DNSType.opt.rawValue, length: -1) }
                edns = DNSEDNS(record: rr)
            } else {
                additional.append(rr)
            }
        }
        guard r.remaining == 0 else { throw .trailingData(r.remaining) }
    }

    private static func record(_ r: inout DNSWireReader, optAllowed: Bool) throws(DNSWireError) -> DNSResourceRecord {
        let rr = try DNSResourceRecord(from: &r)
        if rr.type == .opt, !optAllowed { throw .badRDataLength(type: DNSType.opt.rawValue, length: -1) }
        return rr
    }

    /// Encodes with name compression. With `limit`, records that do not fit are left out
    /// (additional first, then authority, then answers) and TC is set if an answer had to go.
    public func encode(limit: Int = DNSMessage.maxSize) -> [UInt8] {
        var w = DNSWireWriter(capacity: min(limit, 1024))
        var h = header
        h.qdCount = UInt16(questions.count)
        h.anCount = 0
        h.nsCount = 0
        h.arCount = 0
        h.encode(into: &w)
        for q in questions { q.encode(into: &w) }
        // The OPT record must survive truncation, so keep room for it from the start.
        let optSize = edns.map { 11 + $0.options.count } ?? 0
        let budget = max(limit - optSize, w.count)
        var truncated = false
        func put(_ rr: DNSResourceRecord, _ w: inout DNSWireWriter) -> Bool {
            let mark = w.count
            rr.encode(into: &w)
            if w.count > budget {
                w.truncate(to: mark)
                return false
            }
            return true
        }
        var an: UInt16 = 0, ns: UInt16 = 0, ar: UInt16 = 0
        for rr in answers {
            if truncated { break }
            if put(rr, &w) { an += 1 } else { truncated = true }
        }
        if !truncated {
            for rr in authority { if put(rr, &w) { ns += 1 } else { break } }
            for rr in additional { if put(rr, &w) { ar += 1 } else { break } }
        }
        if let e = edns {
            e.encode(into: &w)
            ar += 1
        }
        if truncated { h.truncated = true }
        w.patch16(at: 2, h.flags)
        w.patch16(at: 6, an)
        w.patch16(at: 8, ns)
        w.patch16(at: 10, ar)
        return w.bytes
    }
}
