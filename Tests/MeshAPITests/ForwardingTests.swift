import Foundation
import MeshAPI
import NIOHTTP1
import Testing

/// Which requests a manager that does not lead hands to the leader: the swarm's shared state, never
/// this node's own membership, containers, images or volumes.
struct ForwardingTests {
    @Test(arguments: [
        ("GET", "/v1.47/services", true), ("POST", "/services/create", true), ("HEAD", "/nodes", true),
        ("GET", "/tasks?filters=%7B%7D", true), ("DELETE", "/networks/abc", true), ("POST", "/secrets/create", true),
        ("GET", "/configs", true), ("GET", "/swarm", true), ("POST", "/v1.41/swarm/update?version=3", true),
        ("GET", "/swarm/unlockkey", true), ("GET", "/services/web/logs?stdout=1", true),
        ("POST", "/swarm/init", false), ("POST", "/v1.47/swarm/join", false), ("POST", "/swarm/leave?force=1", false),
        ("POST", "/v1.47/swarm/unlock", false),
        ("GET", "/info", false), ("GET", "/events", false), ("GET", "/containers/json", false), ("GET", "/images/json", false),
        ("GET", "/volumes", false), ("GET", "/_ping", false), ("GET", "/version", false), ("GET", "/", false),
        ("GET", "/vnext/services", false),
    ])
    func clusterRequests(_ method: String, _ uri: String, _ forwarded: Bool) {
        #expect(APIRouter.isClusterRequest(method: HTTPMethod(rawValue: method), uri: uri) == forwarded, "\(method) \(uri)")
    }
}
