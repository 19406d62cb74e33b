import MeshKernel

/// The nftables layout for service VIPs that MeshKernel's benchmark and traffic proof use (and
/// that the dataplane should adopt): adding or removing a service costs the same at 100 or
/// 10,000 services. Kernel behaviours that shape it (measured at 10,000 services on 6.18):
///
/// - A transaction that adds a rule containing any expression with a validate hook (nat,
///   lookup, immediate, meta set, ...) or a jump/goto element makes the kernel re-validate the
///   whole table, walking every chain reachable from the base chains: 6-16 ms per change.
/// - Binding a lookup that has a data register to a map walks all of the map's elements and
///   bindings, once per (map, chain): a rule per service into one 100,000-element map made a
///   cold load take 90 s.
/// - Sets are found by name with a linear search, so a set per service makes changes O(N).
/// - A rule may not read a register another rule wrote (ENODATA), so chains cannot pass values.
///
/// So every rule and jump is made ahead of need, in a pool of slots, and a service is only
/// set elements (which trigger no validation):
///
///     prerouting: r8..r10 = daddr . l4proto . dport; r4 = @svc_slot[r8]; goto @slot_dispatch[r4]
///     slot-N:     r0 = N; r1 = numgen random mod M; r0 = @be-(N/64)[r0 . r1]; dnat r0:r1
///
/// A slot serves services with exactly M backends (M fixed when the slot's chunk of 64 is
/// made; weights repeat a backend). Adding a service is M elements in its shard map and one in
/// @svc_slot; making a chunk is the only change that pays for validation, once per 64 slots.
public struct NFTServiceRuleset: Sendable {
    public static let shardSize = 64
    public let table: NFTTable
    public let backends: Int
    public var pre: NFTChain { NFTChain(table, "prerouting", base: .init(type: .nat, hook: .prerouting, priority: -100)) }
    public var svcSlot: NFTSet { NFTSet(table, "svc_slot", key: NFTKeyType(.ipv4Address, .inetProto, .inetService), kind: .map(NFTKeyType(.mark))) }
    public var dispatch: NFTSet { NFTSet(table, "slot_dispatch", key: NFTKeyType(.mark), kind: .verdictMap) }
    public func backendMap(slot: Int) -> NFTSet {
        NFTSet(table, "be-\(slot / Self.shardSize)", key: NFTKeyType(.mark, .integer(bytes: 4)), kind: .map(NFTKeyType(.ipv4Address, .inetService)))
    }

    public init(table: NFTTable, backends: Int) {
        self.table = table
        self.backends = backends
    }

    public func chain(_ slot: Int) -> NFTChain { NFTChain(table, "slot-\(slot)") }

    /// The table, base chain, the two maps and the dispatch rule.
    public func base() -> NFTBatch {
        var b = NFTBatch()
        b.add(table); b.add(pre); b.add(svcSlot); b.add(dispatch)
        b.add(NFTRule(pre, NFTExpr.load([.ipDaddr, .l4proto, .thDport], from: 8)
                      + [.lookup(set: svcSlot.name, from: .r(8), into: .r(4), invert: false),
                         .lookup(set: dispatch.name, from: .r(4), into: .verdict, invert: false)],
                      comment: "service dispatch"))
        return b
    }

    /// Slot chains with their rules, dispatch elements and shard maps, for services with
    /// `modulus` backends: the only rules and jumps the table ever gets after `base()`.
    /// `range` starts at a shard boundary.
    public func pool(_ range: Range<Int>, modulus: Int, to b: inout NFTBatch) {
        for shard in stride(from: range.lowerBound, to: range.upperBound, by: Self.shardSize) { b.add(backendMap(slot: shard)) }
        for i in range {
            b.add(chain(i))
            b.add(slotRule(i, modulus))
        }
        b.add(range.map { .map(.u32(UInt32($0)), to: .goto(chain($0).name)) }, to: dispatch)
    }

    /// Service in `slot` (whose modulus must be `backends.count`) at `vip:port/tcp`.
    public func add(service slot: Int, vip: IPAddress, port: UInt16 = 80, backends: [(IPAddress, UInt16)], to b: inout NFTBatch) {
        b.add(backends.enumerated().map { j, be in
            .map(.concat(.u32(UInt32(slot)), .u32(UInt32(j))), to: .concat(.address(be.0), .port(be.1)))
        }, to: backendMap(slot: slot))
        b.add([.map(.concat(.address(vip), .proto(6), .port(port)), to: .u32(UInt32(slot)))], to: svcSlot)
    }

    /// Frees `slot`: the VIP stops matching first, in the same transaction its backends go.
    public func remove(service slot: Int, vip: IPAddress, port: UInt16 = 80, backends count: Int, to b: inout NFTBatch) {
        b.delete([NFTElement(.concat(.address(vip), .proto(6), .port(port)))], from: svcSlot)
        b.delete((0..<count).map { NFTElement(.concat(.u32(UInt32(slot)), .u32(UInt32($0)))) }, from: backendMap(slot: slot))
    }

    public func slotRule(_ slot: Int, _ modulus: Int) -> NFTRule {
        NFTRule(chain(slot), [.immediate(into: .r(0), .u32(UInt32(slot))),
                              .numgen(random: true, modulus: UInt32(modulus), offset: 0, into: .r(1)),
                              .lookup(set: backendMap(slot: slot).name, from: .r(0), into: .r(0), invert: false),
                              .nat(.dnat, family: .ip, address: .r(0), port: .r(1), flags: [.protoSpecified])],
                comment: "slot \(slot)")
    }

    // MARK: - the benchmark's synthetic services and their nft text

    public static func vip(_ i: Int) -> IPAddress { .v4(0x0A60_0000 + UInt32(i)) }               // 10.96.x.y
    public func backendAddresses(_ i: Int) -> [(IPAddress, UInt16)] {
        (0..<backends).map { j in (.v4(0x0A80_0000 + UInt32(i * backends + j)), 8080) }          // 10.128.x.y
    }

    /// The same ruleset for `nft -f`, with the packet mark where MeshKernel uses registers (nft
    /// can neither chain a map into a verdict map nor put a constant first in a concatenation).
    public func nftBase() -> String {
        """
        table ip \(table.name) {
          map svc_slot { type ipv4_addr . inet_proto . inet_service : mark; }
          map slot_dispatch { type mark : verdict; }
          chain prerouting {
            type nat hook prerouting priority -100; policy accept;
            meta mark set ip daddr . meta l4proto . th dport map @svc_slot meta mark vmap @slot_dispatch
          }
        }

        """
    }

    public func nftPool(_ range: Range<Int>) -> String {
        stride(from: range.lowerBound, to: range.upperBound, by: Self.shardSize).map {
            "add map ip \(table.name) be-\($0 / Self.shardSize) { typeof meta mark . numgen random mod \(backends) : ip daddr . tcp dport; }\n"
        }.joined()
            + range.map { i in
                "add chain ip \(table.name) slot-\(i)\n"
                + "add rule ip \(table.name) slot-\(i) meta l4proto tcp meta mark set \(i) dnat ip to meta mark . numgen random mod \(backends) map @be-\(i / Self.shardSize)\n"
            }.joined()
            + "add element ip \(table.name) slot_dispatch { " + range.map { "\($0) : goto slot-\($0)" }.joined(separator: ", ") + " }\n"
    }

    public func nftService(_ i: Int) -> String {
        let elements = backendAddresses(i).enumerated().map { j, be in "\(i) . \(j) : \(be.0) . \(be.1)" }.joined(separator: ", ")
        return """
        add element ip \(table.name) be-\(i / Self.shardSize) { \(elements) }
        add element ip \(table.name) svc_slot { \(Self.vip(i)) . tcp . 80 : \(i) }

        """
    }
}
