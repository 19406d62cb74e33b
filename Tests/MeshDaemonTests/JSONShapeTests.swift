import Foundation
import MeshAPI
import MeshCluster
import MeshDaemon
import Testing

/// What the controller answers, encoded as the API server encodes it, has the keys and value types the
/// docker CLI reads (docker-api.md §5–6).
@Suite struct JSONShapeTests {
    @Test func mappedModelsEncodeWithDockersFieldNames() async throws {
        try await TestCluster.with(workers: 1) { c in
            let ctl = c.controller
            let net = try await ctl.createNetwork(NetworkCreateRequest(Name: "demo", Labels: ["k": "v"]))
            _ = try await ctl.createService(webSpec("web", replicas: 2, networks: [net.Id], ports: [MeshAPI.PortConfig(TargetPort: 80)]))
            try await c.converge(rounds: 2)

            // Swarm: ClusterInfo's keys flat beside JoinTokens (Go embeds the struct).
            let swarm = try jsonObject(try await ctl.inspectSwarm())
            for key in [
                "ID", "Version", "CreatedAt", "UpdatedAt", "Spec", "TLSInfo", "DefaultAddrPool", "SubnetSize", "DataPathPort", "JoinTokens",
            ] {
                #expect(swarm[key] != nil, "Swarm.\(key)")
            }
            #expect(object(swarm["Version"])["Index"] is NSNumber)
            #expect((object(swarm["JoinTokens"])["Worker"] as? String)?.hasPrefix("SWMTKN-1-") == true)
            #expect(Set(object(swarm["TLSInfo"]).keys) == ["TrustRoot", "CertIssuerSubject", "CertIssuerPublicKey"])
            // The period meshd's agents beat at, not swarmkit's 5 s.
            #expect(object(object(swarm["Spec"])["Dispatcher"])["HeartbeatPeriod"] as? Int == 2_000_000_000)
            // meshd runs no Raft: no snapshot interval or ticks of swarmkit's that `docker info` would print.
            #expect(object(swarm["Spec"])["Raft"] == nil)
            #expect(EngineJSON.parseDate(swarm["CreatedAt"] as? String ?? "") != nil)

            let info = try jsonObject(await ctl.swarmInfo(selfAddr: "192.168.50.1"))
            #expect(info["LocalNodeState"] as? String == "active" && info["ControlAvailable"] as? Bool == true)
            #expect(object(array(info["RemoteManagers"]).first)["Addr"] as? String == "192.168.50.1:2377")
            #expect(object(info["Cluster"])["JoinTokens"] == nil && object(info["Cluster"])["ID"] is String)

            // Node: the manager has ManagerStatus with Leader, the worker none.
            let nodes = try await ctl.listNodes(NodeFilter())
            for n in nodes {
                let json = try jsonObject(n)
                #expect(Set(object(json["Spec"]).keys).isSuperset(of: ["Role", "Availability", "Labels"]))
                #expect(Set(object(json["Description"]).keys).isSuperset(of: ["Hostname", "Platform", "Resources", "Engine"]))
                #expect(object(object(json["Description"])["Engine"])["EngineVersion"] is String)
                #expect(object(json["Status"])["State"] as? String == "ready" && object(json["Status"])["Addr"] is String)
                #expect(object(json["Status"])["Message"] == nil)
                if n.ID == c.managerID {
                    let ms = object(json["ManagerStatus"])
                    #expect(
                        ms["Leader"] as? Bool == true && ms["Reachability"] as? String == "reachable"
                            && ms["Addr"] as? String == "192.168.50.1:2377")
                } else {
                    #expect(json["ManagerStatus"] == nil)
                }
            }

            // Service: Replicas present, resolved ports, VIPs, ServiceStatus only when asked.
            let listed = try #require(try await ctl.listServices(ServiceFilter(), status: true).first)
            let service = try jsonObject(listed)
            let spec = object(service["Spec"])
            #expect(spec["Name"] as? String == "web")
            #expect(object(object(spec["Mode"])["Replicated"])["Replicas"] as? Int == 2)
            let template = object(spec["TaskTemplate"])
            #expect(object(template["ContainerSpec"])["Image"] as? String == "meshd/whoami")
            #expect(object(array(template["Networks"]).first)["Target"] as? String == net.Id)
            #expect(
                object(spec["UpdateConfig"])["Monitor"] as? Int == 5_000_000_000
                    && object(spec["UpdateConfig"])["Order"] as? String == "stop-first")
            let endpoint = object(service["Endpoint"])
            let port = object(array(endpoint["Ports"]).first)
            #expect(
                port["Protocol"] as? String == "tcp" && port["TargetPort"] as? Int == 80 && port["PublishedPort"] as? Int == 30000
                    && port["PublishMode"] as? String == "ingress")
            #expect(array(endpoint["VirtualIPs"]).map { object($0)["NetworkID"] as? String ?? "" }.count == 2)
            #expect(object(endpoint["Spec"])["Mode"] as? String == "vip")
            #expect(
                object(service["ServiceStatus"])["RunningTasks"] as? Int == 2
                    && object(service["ServiceStatus"])["DesiredTasks"] as? Int == 2)
            #expect(try jsonObject(try await ctl.inspectService("web"))["ServiceStatus"] == nil)
            #expect(service["PreviousSpec"] == nil && service["UpdateStatus"] == nil)

            // Task: Status with Timestamp and State, DesiredState, attachments with Network.ID/Spec.Name and Addresses.
            let task = try jsonObject(try #require(try await ctl.listTasks(TaskFilter()).first))
            for key in [
                "ID", "Version", "CreatedAt", "UpdatedAt", "Spec", "ServiceID", "Slot", "NodeID", "Status", "DesiredState",
                "NetworksAttachments",
            ] {
                #expect(task[key] != nil, "Task.\(key)")
            }
            let status = object(task["Status"])
            #expect(status["State"] as? String == "running" && EngineJSON.parseDate(status["Timestamp"] as? String ?? "") != nil)
            #expect(object(object(task["Spec"])["ContainerSpec"])["Image"] as? String == "meshd/whoami")
            let attachment = array(task["NetworksAttachments"]).map(object)
            #expect(Set(attachment.map { object(object($0["Network"])["Spec"])["Name"] as? String ?? "" }) == ["demo", "ingress"])
            #expect(attachment.allSatisfy { (array($0["Addresses"]).first as? String)?.contains("/") == true })

            // Network: the local API's shape with swarm scope.
            let network = try jsonObject(try await ctl.inspectNetwork("demo", scope: "swarm"))
            for key in [
                "Name", "Id", "Created", "Scope", "Driver", "EnableIPv4", "EnableIPv6", "IPAM", "Internal", "Attachable",
                "Ingress", "ConfigOnly", "Containers", "Options", "Labels",
            ] {
                #expect(network[key] != nil, "Network.\(key)")
            }
            #expect(network["Scope"] as? String == "swarm" && network["Driver"] as? String == "overlay")
            #expect(object(array(object(network["IPAM"])["Config"]).first)["Subnet"] as? String == "10.0.1.0/24")
            #expect(object(network["Options"])["com.docker.network.driver.overlay.vxlanid_list"] as? String == "4097")
            #expect(object(network["Labels"])["k"] as? String == "v")
        }
    }
}
