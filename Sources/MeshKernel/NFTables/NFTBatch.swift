/// An ordered list of nftables changes that the kernel applies as one transaction: either all
/// of them take effect or none does. Each change keeps a label in nft's own words ("add rule ip
/// meshd svc-1") so a failure names the object the kernel refused.
public struct NFTBatch: Sendable {
    public enum Operation: Sendable, Equatable {
        case addTable(NFTTable)
        case deleteTable(NFTTable)
        /// Removes every rule of the table (its chains and sets stay).
        case flushTable(NFTTable)
        case addChain(NFTChain)
        case deleteChain(NFTChain)
        case flushChain(NFTChain)
        case addRule(NFTRule, insertFirst: Bool)
        /// Replaces the rule with this handle in place.
        case replaceRule(NFTRule, handle: UInt64)
        case deleteRule(NFTChain, handle: UInt64)
        case addSet(NFTSet)
        case deleteSet(NFTSet)
        case flushSet(NFTSet)
        case addElements(NFTSet, [NFTElement])
        case deleteElements(NFTSet, [NFTElement])
    }

    public private(set) var operations: [Operation] = []
    public init() {}

    public var isEmpty: Bool { operations.isEmpty }

    public mutating func add(_ t: NFTTable) { operations.append(.addTable(t)) }
    public mutating func delete(_ t: NFTTable) { operations.append(.deleteTable(t)) }
    public mutating func flush(_ t: NFTTable) { operations.append(.flushTable(t)) }
    public mutating func add(_ c: NFTChain) { operations.append(.addChain(c)) }
    public mutating func delete(_ c: NFTChain) { operations.append(.deleteChain(c)) }
    public mutating func flush(_ c: NFTChain) { operations.append(.flushChain(c)) }
    public mutating func add(_ r: NFTRule) { operations.append(.addRule(r, insertFirst: false)) }
    public mutating func insert(_ r: NFTRule) { operations.append(.addRule(r, insertFirst: true)) }
    public mutating func replace(_ r: NFTRule, handle: UInt64) { operations.append(.replaceRule(r, handle: handle)) }
    public mutating func deleteRule(_ c: NFTChain, handle: UInt64) { operations.append(.deleteRule(c, handle: handle)) }
    public mutating func add(_ s: NFTSet) { operations.append(.addSet(s)) }
    public mutating func delete(_ s: NFTSet) { operations.append(.deleteSet(s)) }
    public mutating func flush(_ s: NFTSet) { operations.append(.flushSet(s)) }
    public mutating func add(_ e: [NFTElement], to s: NFTSet) { operations.append(.addElements(s, e)) }
    public mutating func delete(_ e: [NFTElement], from s: NFTSet) { operations.append(.deleteElements(s, e)) }
    public mutating func append(contentsOf other: NFTBatch) { operations += other.operations }
}

extension NFTBatch.Operation {
    /// The change in nft's syntax, used in error messages.
    public var label: String {
        switch self {
        case .addTable(let t): "add table \(t.family) \(t.name)"
        case .deleteTable(let t): "delete table \(t.family) \(t.name)"
        case .flushTable(let t): "flush table \(t.family) \(t.name)"
        case .addChain(let c): "add chain \(c.table.family) \(c.table.name) \(c.name)"
        case .deleteChain(let c): "delete chain \(c.table.family) \(c.table.name) \(c.name)"
        case .flushChain(let c): "flush chain \(c.table.family) \(c.table.name) \(c.name)"
        case .addRule(let r, let first):
            "\(first ? "insert" : "add") rule \(r.chain.table.family) \(r.chain.table.name) \(r.chain.name)"
                + (r.comment.map { " comment \"\($0)\"" } ?? "")
        case .replaceRule(let r, let h): "replace rule \(r.chain.table.family) \(r.chain.table.name) \(r.chain.name) handle \(h)"
        case .deleteRule(let c, let h): "delete rule \(c.table.family) \(c.table.name) \(c.name) handle \(h)"
        case .addSet(let s): "add \(s.kindWord) \(s.table.family) \(s.table.name) \(s.name)"
        case .deleteSet(let s): "delete \(s.kindWord) \(s.table.family) \(s.table.name) \(s.name)"
        case .flushSet(let s): "flush \(s.kindWord) \(s.table.family) \(s.table.name) \(s.name)"
        case .addElements(let s, let e): "add element \(s.table.family) \(s.table.name) \(s.name) (\(e.count))"
        case .deleteElements(let s, let e): "delete element \(s.table.family) \(s.table.name) \(s.name) (\(e.count))"
        }
    }
}

extension NFTSet {
    var kindWord: String { if case .set = kind { "set" } else { "map" } }
}

extension NFTBatch.Operation {
    /// Every name the operation carries, with what it names: bounded before encoding.
    var names: [(String, String)] {
        func chain(_ c: NFTChain) -> [(String, String)] { [(c.table.name, "table"), (c.name, "chain")] }
        func set(_ s: NFTSet) -> [(String, String)] { [(s.table.name, "table"), (s.name, "set")] }
        switch self {
        case .addTable(let t), .deleteTable(let t), .flushTable(let t): return [(t.name, "table")]
        case .addChain(let c), .deleteChain(let c), .flushChain(let c), .deleteRule(let c, _): return chain(c)
        case .addRule(let r, _), .replaceRule(let r, _):
            return chain(r.chain) + r.expressions.flatMap { $0.names.map { ($0, "name in a rule") } }
        case .addSet(let s), .deleteSet(let s), .flushSet(let s), .addElements(let s, _), .deleteElements(let s, _): return set(s)
        }
    }
}
