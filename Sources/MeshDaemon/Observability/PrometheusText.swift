/// Prometheus text exposition (version 0.0.4) for values read at scrape time: a family's HELP and
/// TYPE once, then its samples, label values escaped as the format requires.
struct PrometheusText {
    enum Kind: String { case counter, gauge }
    struct Sample {
        var labels: [(String, String)]
        var value: UInt64
    }
    private(set) var text = ""

    mutating func family(_ name: String, _ kind: Kind, help: String, _ samples: [Sample]) {
        guard !samples.isEmpty else { return }
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
        for s in samples {
            text += name
            if !s.labels.isEmpty {
                text += "{" + s.labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
            }
            text += " \(s.value)\n"
        }
    }

    mutating func family(_ name: String, _ kind: Kind, help: String, value: Int) {
        family(name, kind, help: help, [Sample(labels: [], value: UInt64(max(0, value)))])
    }

    static func escape(_ v: String) -> String {
        var out = ""
        for c in v {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}
