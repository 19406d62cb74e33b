import CompressNIO
import Crypto
import Foundation
import NIOCore

/// A layer blob's uncompressed bytes, read from a file in the store, with the sha256 of all of
/// them (the layer's diff ID once the stream is drained).
public final class LayerSource: ByteSource {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case corruptGzip(String)
        case io(String)
        public var description: String {
            switch self {
            case .corruptGzip(let r): "layer is not valid gzip: \(r)"
            case .io(let r): "reading layer: \(r)"
            }
        }
    }

    let handle: FileHandle
    let inflater: ZlibDecompressor?
    var input = ByteBuffer()
    var output = ByteBuffer()
    var inputEOF = false
    var hasher = SHA256()
    public private(set) var uncompressedBytes: Int64 = 0

    static let chunk = 1 << 16

    public init(path: String, compression: MediaType.Compression) throws {
        guard let h = FileHandle(forReadingAtPath: path) else { throw Failure.io("cannot open \(path)") }
        handle = h
        inflater = compression == .gzip ? try ZlibDecompressor(algorithm: .gzip) : nil
    }

    deinit { try? handle.close() }

    /// The digest of everything read so far.
    public var digest: Digest { Digest(hasher.finalize()) }

    public func read(upTo n: Int) throws -> [UInt8] {
        guard n > 0 else { return [] }
        if output.readableBytes == 0 { try fill() }
        let take = min(n, output.readableBytes)
        guard take > 0, let bytes = output.readBytes(length: take) else { return [] }
        hasher.update(data: bytes)
        uncompressedBytes += Int64(bytes.count)
        return bytes
    }

    func readInput() throws {
        let data: Data?
        do { data = try handle.read(upToCount: Self.chunk) } catch { throw Failure.io(String(describing: error)) }
        guard let data, !data.isEmpty else {
            inputEOF = true
            return
        }
        input.discardReadBytes()
        input.writeBytes(data)
    }

    /// Puts the next uncompressed bytes in `output`; leaves it empty only at the end of the stream.
    func fill() throws {
        output.clear()
        guard let inflater else {
            if input.readableBytes == 0 && !inputEOF { try readInput() }
            if input.readableBytes > 0 { output.writeBuffer(&input) }
            return
        }
        var resetTried = false
        while output.readableBytes == 0 {
            if input.readableBytes == 0 {
                if inputEOF { return }
                try readInput()
                continue
            }
            output.reserveCapacity(Self.chunk)
            let before = input.readableBytes
            do {
                try inflater.inflate(from: &input, to: &output)
            } catch let e as CompressNIOError where e == .bufferOverflow || e == .inputBufferOverflow {
                // The window filled up, or zlib wants more input: both are progress.
            } catch {
                throw Failure.corruptGzip(String(describing: error))
            }
            if output.readableBytes == 0 && input.readableBytes == before {
                // No progress with input left: the gzip member ended. A second member follows
                // (concatenated gzip, which Go's reader accepts too); anything else is corrupt.
                guard !resetTried else { throw Failure.corruptGzip("trailing bytes after the gzip stream") }
                resetTried = true
                do { try inflater.reset() } catch { throw Failure.corruptGzip(String(describing: error)) }
            } else {
                resetTried = false
            }
        }
    }
}
