import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// How the daemon writes its log: one line per event on stderr, as text for a terminal or as
/// JSON for a collector (journald, Loki, `jq`). Each line goes out in one `write(2)`, so lines
/// of concurrent tasks never interleave.
public struct LogOutput: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case text, json
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: Format
    let sink: @Sendable ([UInt8]) -> Void

    /// `sink` receives each finished line, newline included (stderr unless a test says otherwise).
    public init(
        label: String, level: Logger.Level, format: Format, sink: @escaping @Sendable ([UInt8]) -> Void = LogOutput.standardError
    ) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        sink(Self.line(label: label, level: event.level, message: "\(event.message)", metadata: all, format: format, at: Date()))
    }

    /// One line of the log, newline included. `meshd.` is left off text labels: every line is meshd's.
    static func line(
        label: String, level: Logger.Level, message: String, metadata: Logger.Metadata, format: Format, at date: Date
    ) -> [UInt8] {
        switch format {
        case .text:
            var s = "meshd: "
            if level >= .warning { s += "\(level.rawValue): " }
            let component = label.hasPrefix("meshd.") ? String(label.dropFirst(6)) : label
            if !component.isEmpty && component != "meshd" { s += "\(component): " }
            s += message
            for key in metadata.keys.sorted() { s += " \(key)=\(metadata[key]!)" }
            return Array((s + "\n").utf8)
        case .json:
            var fields: [(String, String)] = [
                ("time", jsonString(Self.timestamp(date))), ("level", jsonString(level.rawValue)), ("logger", jsonString(label)),
                ("msg", jsonString(message)),
            ]
            for key in metadata.keys.sorted() where !["time", "level", "logger", "msg"].contains(key) {
                fields.append((key, json(metadata[key]!)))
            }
            let body = fields.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",")
            return Array("{\(body)}\n".utf8)
        }
    }

    static func json(_ v: Logger.Metadata.Value) -> String {
        switch v {
        case .string(let s): return jsonString(s)
        case .stringConvertible(let c): return jsonString(c.description)
        case .array(let a): return "[" + a.map(json).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.keys.sorted().map { "\(jsonString($0)):\(json(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal: quotes, backslashes and every control character escaped.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// RFC 3339 in UTC with milliseconds, as log collectors parse it.
    static func timestamp(_ d: Date) -> String {
        var t = time_t(d.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&t, &parts)
        let ms = Int((d.timeIntervalSince1970 - Double(t)) * 1000)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):"
            + "\(two(parts.tm_sec)).\(msText)Z"
    }

    public static let standardError: @Sendable ([UInt8]) -> Void = { bytes in
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(2, raw.baseAddress! + done, raw.count - done)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return  // stderr is gone: nothing better to do with a log line
                }
                done += n
            }
        }
    }
}
