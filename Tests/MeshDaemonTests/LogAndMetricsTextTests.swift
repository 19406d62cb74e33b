import Foundation
import Logging
import Synchronization
import Testing

@testable import MeshDaemon

@Suite struct LogAndMetricsTextTests {
    static let date = Date(timeIntervalSince1970: 1_796_000_000.042)

    @Test func jsonLinesAreOneObjectWithEscapedFields() throws {
        let line = LogOutput.line(
            label: "meshd.manager", level: .warning, message: "node \"n1\"\nleft\u{1}", metadata: ["node": "n1", "count": "3"],
            format: .json, at: Self.date)
        let text = String(decoding: line, as: UTF8.self)
        #expect(text.hasSuffix("}\n") && text.filter { $0 == "\n" }.count == 1, "one line: \(text)")
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: String])
        #expect(obj["msg"] == "node \"n1\"\nleft\u{1}")
        #expect(obj["level"] == "warning" && obj["logger"] == "meshd.manager" && obj["node"] == "n1" && obj["count"] == "3")
        #expect(obj["time"] == "2026-11-30T00:53:20.042Z")
    }

    @Test func textLinesNameThePartAndTheSeverity() {
        let info = LogOutput.line(label: "meshd", level: .info, message: "left the swarm", metadata: [:], format: .text, at: Self.date)
        #expect(String(decoding: info, as: UTF8.self) == "meshd: left the swarm\n")
        let warn = LogOutput.line(
            label: "meshd.node", level: .warning, message: "session ended", metadata: ["manager": "10.0.0.1:2377"], format: .text,
            at: Self.date)
        #expect(String(decoding: warn, as: UTF8.self) == "meshd: warning: node: session ended manager=10.0.0.1:2377\n")
    }

    @Test func handlerHonoursItsLevel() {
        let lines = Mutex<[String]>([])
        var log = Logger(label: "meshd.test") { label in
            LogOutput(label: label, level: .info, format: .text) { bytes in
                lines.withLock { $0.append(String(decoding: bytes, as: UTF8.self)) }
            }
        }
        log.debug("hidden")
        log.info("shown")
        log[metadataKey: "task"] = "t1"
        log.error("bad")
        #expect(lines.withLock { $0 } == ["meshd: test: shown\n", "meshd: error: test: bad task=t1\n"])
    }

    @Test func prometheusFamiliesEscapeLabelValues() {
        var p = PrometheusText()
        p.family(
            "meshd_vip_connections_total", .counter, help: "New connections.",
            [.init(labels: [("service", "a\"b\\c\nd"), ("vip", "10.0.1.2")], value: 7)])
        p.family("meshd_empty_total", .counter, help: "Nothing.", [])
        #expect(
            p.text
                == "# HELP meshd_vip_connections_total New connections.\n# TYPE meshd_vip_connections_total counter\n"
                + "meshd_vip_connections_total{service=\"a\\\"b\\\\c\\nd\",vip=\"10.0.1.2\"} 7\n")
    }
}
