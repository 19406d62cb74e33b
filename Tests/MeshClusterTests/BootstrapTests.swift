import Foundation
import MeshKernel
import Testing
@testable import MeshCluster

@Suite struct BootstrapTests {
    @Test func initThenReloadAfterRestart() throws {
        let path = temporaryPath("cluster.sqlite")
        defer { removeTemporary(path) }
        let nodeID = ObjectID.make()
        let settings: ClusterSettings
        var allocator: NetworkAllocator
        do {
            let store = try SQLiteClusterStore(path: path)
            (settings, allocator) = try ClusterBootstrap.initialize(
                store: store, nodeID: nodeID, hostname: "node1",
                advertiseAddr: "192.168.50.1", now: t0)
            let ingress = try store.resolve(ClusterNetwork.self, "ingress")
            #expect(ingress.subnet.description == "10.0.0.0/24" && ingress.vni == 4096 && ingress.ingress)
            let me = try store.resolve(ClusterNode.self, "node1")
            #expect(me.id == nodeID && me.leader && me.role == .manager && me.managerAddr == "192.168.50.1:2377")
            #expect(me.attachments.map(\.address) == ["10.0.0.2/24"])
            #expect(throws: ClusterError.self) {
                try ClusterBootstrap.initialize(store: store, nodeID: nodeID, hostname: "node1", advertiseAddr: "192.168.50.1", now: t0)
            }
            let demo = try allocator.createNetwork(id: ObjectID.make(), request: NetworkRequest(name: "demo"), now: t0)
            try store.create(demo)
        }
        let store = try SQLiteClusterStore(path: path)
        let loaded = try #require(try ClusterBootstrap.load(store: store))
        #expect(loaded.0 == settings)
        #expect(loaded.1.digest == (try JoinToken.parse(settings.tokens.worker)).caDigest)
        #expect(loaded.2 == allocator)
        #expect(settings.gossipKeys.count == 1 && settings.gossipKeys[0].bytes.count == 32)
        let custom = temporaryPath("c.sqlite")
        defer { removeTemporary(custom) }
        let (s2, a2) = try ClusterBootstrap.initialize(
            store: try SQLiteClusterStore(path: custom), nodeID: nodeID, hostname: "n",
            advertiseAddr: "10.1.1.1", defaultAddrPool: [IPPrefix("10.10.0.0/16")!], now: t0)
        #expect(a2.spaces[s2.ingressNetworkID]?.subnet.description == "10.10.0.0/24")
    }
}
