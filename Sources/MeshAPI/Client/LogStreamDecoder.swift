/// Splits a stdcopy-multiplexed stream back into frames. Bytes may arrive in any pieces; a frame
/// header announcing more than `maxFrame` bytes, or an unknown stream byte, is an error before
/// anything is allocated for it.
public struct LogStreamDecoder: Sendable {
    public struct Frame: Sendable, Equatable {
        public var stream: UInt8
        public var payload: [UInt8]
    }

    public enum Failure: Error, Equatable {
        case badStream(UInt8)
        case frameTooLarge(Int)
    }

    public let maxFrame: Int
    private var pending: [UInt8] = []

    public init(maxFrame: Int = 1 << 20) { self.maxFrame = maxFrame }

    public mutating func feed(_ bytes: [UInt8]) throws(Failure) -> [Frame] {
        pending += bytes
        var frames: [Frame] = []
        var at = 0
        while pending.count - at >= 8 {
            let stream = pending[at]
            guard stream <= 3 else { throw .badStream(stream) }
            let n = Int(pending[at + 4]) << 24 | Int(pending[at + 5]) << 16 | Int(pending[at + 6]) << 8 | Int(pending[at + 7])
            guard n <= maxFrame else { throw .frameTooLarge(n) }
            guard pending.count - at - 8 >= n else { break }
            frames.append(Frame(stream: stream, payload: Array(pending[(at + 8)..<(at + 8 + n)])))
            at += 8 + n
        }
        pending.removeFirst(at)
        return frames
    }

    /// Bytes of an unfinished frame.
    public var buffered: Int { pending.count }
}
