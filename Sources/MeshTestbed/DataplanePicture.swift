import Foundation
import MeshKernel

/// What the kernel holds in a set of namespaces, as sorted text lines free of anything that
/// differs between two equal configurations (ifindexes, random veth MACs, nft handles): two
/// pictures are equal exactly when the same objects exist.
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
            for i in a["addr_info"] as? [[String: Any]] ?? [] where (i["scope"] as? String) != "link" || (i["family"] as? String) == "inet"
            {
                lines.append("addr \(dev) \(i["local"] ?? "")/\(i["prefixlen"] ?? "")")
            }
        }
        for table in ["main", "local"] {
            for r in try Exec.json(["ip", "-n", ns, "-j", "-4", "route", "show", "table", table]) as? [[String: Any]] ?? [] {
                lines.append(
                    "route \(table) \(r["type"] ?? "unicast") \(r["dst"] ?? "") dev=\(r["dev"] ?? "") via=\(r["gateway"] ?? "-") src=\(r["prefsrc"] ?? "-")"
                )
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
        lines += try nftLines(ns)
        if let ipvs = try? Exec.run(["ip", "netns", "exec", ns, "ipvsadm", "-Ln", "--sort"]), ipvs.succeeded {
            for l in ipvs.stdout.split(separator: "\n")
            where l.contains("->") || l.hasPrefix("TCP") || l.hasPrefix("UDP") || l.hasPrefix("FWM") || l.hasPrefix("SCTP") {
                // Drop the connection counters: they change with traffic, not with configuration.
                let cols = l.split(separator: " ", omittingEmptySubsequences: true)
                lines.append("ipvs " + cols.prefix(l.contains("->") ? 4 : 3).joined(separator: " "))
            }
        }
        return lines
    }

    /// Every nft table, chain, rule (its expressions and comment) and set element in `ns`, read
    /// over netlink: nft 1.0.6's CLI aborts (netlink_parse_concat_expr assertion) when it lists a
    /// rule that looks up a `mark . numgen` concatenation, as meshd's balancer rules do.
    public static func nftLines(_ ns: String) throws -> [String] {
        let sock = try NetworkNamespace.open(named: ns).openNFTables()
        var lines: [String] = []
        for t in try sock.listTables() {
            let table = NFTTable(t.family, t.name)
            let tag = "nft \(t.family) \(t.name)"
            lines.append(tag)
            for c in try sock.listChains(table) {
                lines.append(
                    "\(tag) chain \(c.name) type=\(c.type ?? "-") hook=\(c.hook.map(String.init) ?? "-") prio=\(c.priority.map(String.init) ?? "-") policy=\(c.policy.map(String.init) ?? "-")"
                )
                // Rule order matters within a chain; handles do not.
                for (i, r) in try sock.listRules(table, chain: c.name).enumerated() {
                    lines.append("\(tag) rule \(c.name)#\(i) \(r.expressionNames.joined(separator: ",")) \(r.comment ?? "")")
                }
            }
            for set in try sock.listSets(table) {
                lines.append(
                    "\(tag) set \(set.name) flags=\(set.flags) key=\(set.keyType)/\(set.keyLength) data=\(set.dataType.map(String.init) ?? "-")"
                )
                for e in try sock.listElements(NFTSet(table, set.name, key: NFTKeyType(fields: []))) {
                    lines.append("\(tag) element \(set.name) \(e.key) : \(e.data)")
                }
            }
        }
        return lines
    }

    /// The names of the nft tables in `ns` (over netlink), as "family name".
    public static func nftTables(_ ns: String) throws -> [String] {
        try NetworkNamespace.open(named: ns).openNFTables().listTables().map { "\($0.family) \($0.name)" }
    }

    /// Link names in `ns` (`ip -j link`).
    public static func links(_ ns: String) throws -> [String] {
        (try Exec.json(["ip", "-n", ns, "-j", "link", "show"]) as? [[String: Any]] ?? []).compactMap { $0["ifname"] as? String }
    }
}
