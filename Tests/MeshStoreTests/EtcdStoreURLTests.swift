import Foundation
import MeshEtcd
import Testing

/// `--cluster-store`: what it accepts, what it refuses and how it says so.
struct EtcdStoreURLTests {
    @Test func endpointsAndPrefix() throws {
        let one = try EtcdStoreURL(parsing: "etcd://10.0.0.1:2379")
        #expect(one.endpoints.map(\.description) == ["10.0.0.1:2379"] && one.prefix == "/meshd/v1/")
        #expect(one.description == "etcd://10.0.0.1:2379")
        let three = try EtcdStoreURL(parsing: "etcd://h1:2379,h2:2379,h3:12379/swarms/prod")
        #expect(three.endpoints.map(\.description) == ["h1:2379", "h2:2379", "h3:12379"] && three.prefix == "/swarms/prod/")
        // What a manager stores and hands to joining managers parses back to the same store.
        #expect(try EtcdStoreURL(parsing: three.description) == three)
        #expect(try EtcdStoreURL(parsing: "etcd://h1:2379/").prefix == "/meshd/v1/")
    }

    @Test(arguments: [
        ("http://h1:2379", "only etcd://"), ("etcd://", "\"\" is not host:port"), ("etcd://h1", "\"h1\" is not host:port"),
        ("etcd://h1:2379,,h2:2379", "\"\" is not host:port"), ("etcd://h1:99999", "\"h1:99999\" is not host:port"),
        ("etcd://:2379", "\":2379\" is not host:port"),
    ])
    func refusedWithTheReason(_ text: String, _ reason: String) {
        #expect {
            _ = try EtcdStoreURL(parsing: text)
        } throws: { error in
            "\(error)".contains(reason) && "\(error)".contains(text)
        }
    }
}
