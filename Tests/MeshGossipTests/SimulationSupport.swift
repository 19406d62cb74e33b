import Testing
@testable import MeshGossip

/// What each simulated node's watchers have been told, rebuilt from the events alone, plus
/// every membership change seen, so tests can check both against the nodes' state.
final class Recorder {
    var views: [[EntryKey: [UInt8]]]
    var memberEvents: [(node: Int, about: String, state: MemberState, at: Duration)] = []
    var inconsistent: [String] = []

    init(count: Int) { views = Array(repeating: [:], count: count) }

    func attach(_ sim: Simulator) {
        sim.observer = { [unowned self] i, e, t in
            switch e {
            case let .member(name, _, state, _): memberEvents.append((i, name, state, t))
            case let .table(c):
                let k = EntryKey(network: c.network, table: c.table, key: c.key)
                switch c.kind {
                case .create:
                    if views[i][k] != nil { inconsistent.append("node \(i): create of existing \(c)") }
                    views[i][k] = c.value
                case .update:
                    if views[i][k] == nil { inconsistent.append("node \(i): update of missing \(c)") }
                    views[i][k] = c.value
                case .delete:
                    if views[i][k] == nil { inconsistent.append("node \(i): delete of missing \(c)") }
                    views[i][k] = nil
                }
            case .warning: break
            }
        }
    }

    func firstTime(_ about: String, _ state: MemberState, seenBy node: Int) -> Duration? {
        memberEvents.first { $0.node == node && $0.about == about && $0.state == state }?.at
    }
}

func sees(_ sim: Simulator, _ i: Int, _ name: String, _ state: MemberState) -> Bool {
    sim.nodes[i].member(name)?.state == state
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
