import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// One line of a container's output as Docker's json-file driver stores it:
/// `{"log":"text\n","stream":"stdout","time":"2026-12-03T12:00:00.123456789Z"}`, one per line of
/// the file, so `docker logs` (tail, timestamps, stream filters) can be served from it.
public struct LogEntry: Sendable, Equatable, Codable {
    public enum Stream: String, Sendable, Codable { case stdout, stderr }
    public var log: String
    public var stream: Stream
    public var time: String
    public init(log: String, stream: Stream, time: String) {
        self.log = log
        self.stream = stream
        self.time = time
    }
}

public enum JSONLog {
    /// Docker cuts lines longer than this into partial entries (no trailing newline).
    static let maxLine = 16 * 1024

    /// Every entry of a log file in order. A line that does not decode (a torn last write) is
    /// skipped, not fatal: the rest of the log stays readable.
    public static func read(_ path: String) -> [LogEntry] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        return data.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(LogEntry.self, from: Data($0)) }
    }

    /// RFC 3339 with nanoseconds in UTC, as Docker writes `time`.
    public static func timestamp(_ ts: timespec) -> String {
        var seconds = ts.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let date = String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
        return date + String(format: ".%09dZ", Int(ts.tv_nsec))
    }

    static func now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return timestamp(ts)
    }
}

/// Turns the bytes of a task's stdout and stderr into json-file lines. Made by the task's
/// starter, then used by one thread only (the task's reaper): handed over, never shared, so it
/// needs no lock.
final class JSONLogWriter: @unchecked Sendable {
    private let fd: Int32
    private var pending: [LogEntry.Stream: [UInt8]] = [:]
    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes]
        return e
    }()

    init(path: String) throws(RuntimeError) {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw .files("log \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    /// Complete lines go out at once; the rest waits for its newline (or the 16 KiB cut).
    func append(_ stream: LogEntry.Stream, _ bytes: ArraySlice<UInt8>) {
        var buffer = pending[stream, default: []]
        buffer += bytes
        var start = buffer.startIndex
        while let nl = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
            emit(stream, buffer[start...nl])
            start = nl + 1
        }
        while buffer.count - start >= JSONLog.maxLine {
            emit(stream, buffer[start..<start + JSONLog.maxLine])
            start += JSONLog.maxLine
        }
        pending[stream] = Array(buffer[start...])
    }

    /// What is left without a newline when the streams end.
    func flush() {
        for stream in [LogEntry.Stream.stdout, .stderr] {
            if let rest = pending[stream], !rest.isEmpty { emit(stream, rest[...]) }
        }
        pending = [:]
    }

    private func emit(_ stream: LogEntry.Stream, _ line: ArraySlice<UInt8>) {
        let entry = LogEntry(log: String(decoding: line, as: UTF8.self), stream: stream, time: JSONLog.now())
        guard var data = try? encoder.encode(entry) else { return }
        data.append(UInt8(ascii: "\n"))
        // One write per line with O_APPEND: a reader never sees half a line from us.
        _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }
}
