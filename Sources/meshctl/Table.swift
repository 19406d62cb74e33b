/// Docker's table layout (Go tabwriter, minwidth 10, padding 3): every column but the last is as
/// wide as its widest cell plus three spaces, and at least ten.
struct Table {
    var rows: [[String]]

    init(_ header: [String]) { rows = [header] }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        guard let columns = rows.map(\.count).max(), columns > 0 else { return "" }
        var widths = Array(repeating: 0, count: columns)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: max(widths[i] + 3, 10), withPad: " ", startingAt: 0)
            }.joined().replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }.joined(separator: "\n")
    }

    func print() { Swift.print(render()) }
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
    func truncated(_ n: Int) -> String { count > n ? String(prefix(n)) : self }
}
