/// Why a message could not be decoded or encoded. Decoding errors become FORMERR answers (or a
/// dropped datagram when not even the header is readable); they never crash the server.
public enum DNSWireError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(at: Int)
    case labelTooLong(Int)
    case nameTooLong
    case badPointer(at: Int)
    case tooManyPointers
    case reservedLabelType(UInt8)
    case badRDataLength(type: UInt16, length: Int)
    case trailingData(Int)
    case tooManyRecords(Int)
    case messageTooLarge(Int)

    public var description: String {
        switch self {
        case .truncated(let at): return "message ends early at byte \(at)"
        case .labelTooLong(let n): return "label of \(n) bytes (max 63)"
        case .nameTooLong: return "name longer than 255 bytes"
        case .badPointer(let at): return "compression pointer at \(at) does not point backwards"
        case .tooManyPointers: return "compression pointer chain too long"
        case .reservedLabelType(let b): return "reserved label type 0x\(String(b, radix: 16))"
        case .badRDataLength(let t, let n): return "rdata of \(n) bytes for type \(t)"
        case .trailingData(let n): return "\(n) bytes after the last record"
        case .tooManyRecords(let n): return "\(n) records cannot fit in the message"
        case .messageTooLarge(let n): return "message of \(n) bytes (max 65535)"
        }
    }
}
