import Foundation

/// What the kernel holds in a set of namespaces, as sorted text lines free of anything that
/// differs between two equal configurations (ifindexes, random veth MACs, nft handles, set
/// element order): two pictures are equal exactly when the same objects exist.
public enum DataplanePicture {
    /// Lines for every namespace in `namespaces`, each prefixed with the namespace's role (the
    /// name with `strip` removed, so two labs compare too).
    public static func of(_ namespaces: [String], strip: [String] = []) throws -> [String] {
        var lines: [String] = []
        for ns in namespaces {
            var role = ns
            for s in strip { role = role.replacingOccurrences(of: s, with: "") }
            lines += try namespaceLines(ns).map { "\(role) \($0)" }
        }
        return lines.sorted()
    }

    static func namespaceLines(_ ns: String) throws -> [String] {
        var lines: [String] = []
        let links = try Exec.json(["ip", "-n", ns, "-j", "-d", "link", "show"]) as? [[String: Any]] ?? []
        var nameByIndex: [Int: String] = [:]
        for l in links {
            let name = l["ifname"] as? String ?? "?"
            if let i = l["ifindex"] as? Int { nameByIndex[i] = name }
            let info = l["linkinfo"] as? [String: Any]
            let kind = info?["info_kind"] as? String ?? "-"
            let flags = (l["flags"] as? [String] ?? []).contains("UP") ? "up" : "down"
            var line = "link \(name) \(kind) mtu=\(l["mtu"] as? Int ?? 0) \(flags) master=\(l["master"] as? String ?? "-")"
            if kind == "vxlan" {
                let d = info?["info_data"] as? [String: Any] ?? [:]
                line += " mac=\(l["address"] as? String ?? "") vni=\(d["id"] ?? "") local=\(d["local"] ?? "") port=\(d["port"] ?? "")"
            }
            lines.append(line)
        }
        for a in try Exec.json(["ip", "-n", ns, "-j", "addr", "show"]) as? [[String: Any]] ?? [] {
            let dev = a["ifname"] as? String ?? "?"
            for i in a["addr_info"] as? [[String: Any]] ?? [] where (i["scope"] as? String) != "link" || (i["family"] as? String) == "inet" {
                lines.append("addr \(dev) \(i["local"] ?? "")/\(i["prefixlen"] ?? "")")
            }
        }
        for table in ["main", "local"] {
            for r in try Exec.json(["ip", "-n", ns, "-j", "-4", "route", "show", "table", table]) as? [[String: Any]] ?? [] {
                lines.append("route \(table) \(r["type"] ?? "unicast") \(r["dst"] ?? "") dev=\(r["dev"] ?? "") via=\(r["gateway"] ?? "-") src=\(r["prefsrc"] ?? "-")")
            }
        }
        for n in try Exec.json(["ip", "-n", ns, "-j", "neigh", "show", "nud", "permanent"]) as? [[String: Any]] ?? [] {
            lines.append("neigh \(n["dev"] ?? "") \(n["dst"] ?? "") \(n["lladdr"] ?? "")")
        }
        if links.contains(where: { ($0["linkinfo"] as? [String: Any])?["info_kind"] as? String == "vxlan" }) {
            for f in try Exec.json(["bridge", "-n", ns, "-j", "fdb", "show"]) as? [[String: Any]] ?? [] where f["dst"] != nil {
                lines.append("fdb \(f["ifname"] ?? "") \(f["mac"] ?? "") \(f["dst"] ?? "")")
            }
        }
        // nft text without handles; one token per line so set elements compare without order.
        let nft = try Exec.check(["ip", "netns", "exec", ns, "nft", "list", "ruleset"])
        var table = ""
        for raw in nft.split(whereSeparator: { $0 == "\n" || $0 == "," || $0 == "{" || $0 == "}" }) {
            let t = raw.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            if t.hasPrefix("table ") { table = t }
            lines.append("nft [\(table)] \(t)")
        }
        if let ipvs = try? Exec.run(["ip", "netns", "exec", ns, "ipvsadm", "-Ln", "--sort"]), ipvs.succeeded {
            for l in ipvs.stdout.split(separator: "\n") where l.contains("->") || l.hasPrefix("TCP") || l.hasPrefix("UDP") || l.hasPrefix("FWM") || l.hasPrefix("SCTP") {
                // Drop the connection counters: they change with traffic, not with configuration.
                let cols = l.split(separator: " ", omittingEmptySubsequences: true)
                lines.append("ipvs " + cols.prefix(l.contains("->") ? 4 : 3).joined(separator: " "))
            }
        }
        return lines
    }

    /// The names of the nft tables in `ns` (`nft -j list tables`), as "family name".
    public static func nftTables(_ ns: String) throws -> [String] {
        let j = try Exec.json(["ip", "netns", "exec", ns, "nft", "-j", "list", "tables"]) as? [String: Any] ?? [:]
        return (j["nftables"] as? [[String: Any]] ?? []).compactMap { $0["table"] as? [String: Any] }
            .map { "\($0["family"] ?? "") \($0["name"] ?? "")" }
    }

    /// Link names in `ns` (`ip -j link`).
    public static func links(_ ns: String) throws -> [String] {
        (try Exec.json(["ip", "-n", ns, "-j", "link", "show"]) as? [[String: Any]] ?? []).compactMap { $0["ifname"] as? String }
    }
}
