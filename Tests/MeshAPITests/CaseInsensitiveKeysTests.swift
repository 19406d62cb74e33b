import Foundation
import MeshAPI
import Testing

/// Request bodies are read as dockerd's Go encoding/json reads them: keys in any case, unknown keys
/// ignored, absent members zero. The bodies are docker-py 7.2's (`docker/types/services.py`,
/// `api/swarm.py`, `api/network.py`), which spell some keys in lower case.
@Suite("keys in any case")
struct CaseInsensitiveKeysTests {
    func decode<T: Decodable>(_ type: T.Type, _ json: String) throws(EngineError) -> T {
        try APIRequest(method: .POST, uri: "/v1.50/x", contentType: "application/json", body: Array(json.utf8)).decode(type)
    }

    @Test func dockerPysGlobalModeIsAGlobalService() throws {
        // docker-py: ServiceMode('global') is {"global": {}}.
        let spec = try decode(
            ServiceSpec.self,
            """
            {"Name": "g", "TaskTemplate": {"ContainerSpec": {"Image": "busybox", "Command": ["sleep", "300"]}}, "Mode": {"global": {}}}
            """)
        #expect(spec.Mode?.Global != nil)
        #expect(spec.Mode?.Replicated == nil)
        #expect(try ServiceSpecNormalizer.normalize(spec).Mode?.name == "global")
    }

    @Test func dockerPysReplicatedModeKeepsItsCount() throws {
        // docker-py: ServiceMode('replicated', replicas=5) is {"replicated": {"Replicas": 5}}.
        let spec = try decode(
            ServiceSpec.self,
            """
            {"Name": "r", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}, "Mode": {"replicated": {"Replicas": 5}}}
            """)
        #expect(try ServiceSpecNormalizer.normalize(spec).Mode?.Replicated?.Replicas == 5)
    }

    @Test func lowerCaseUpdateOrderAndNestedKeysAreHonoured() throws {
        let spec = try decode(
            ServiceSpec.self,
            """
            {"name": "u", "taskTemplate": {"containerSpec": {"image": "busybox", "env": ["A=1"]},
             "restartPolicy": {"condition": "on-failure", "maxAttempts": 3}, "placement": {"constraints": ["node.role==manager"]},
             "networks": [{"target": "n1", "aliases": ["web"]}]},
             "UpdateConfig": {"Parallelism": 2, "order": "start-first", "failureAction": "rollback"},
             "rollbackconfig": {"ORDER": "stop-first"},
             "endpointSpec": {"mode": "dnsrr", "ports": [{"protocol": "udp", "targetPort": 53, "publishedPort": 5353, "publishMode": "host"}]}}
            """)
        #expect(spec.Name == "u")
        #expect(spec.TaskTemplate.ContainerSpec?.Image == "busybox" && spec.TaskTemplate.ContainerSpec?.Env == ["A=1"])
        #expect(spec.TaskTemplate.RestartPolicy == RestartPolicy(Condition: "on-failure", MaxAttempts: 3))
        #expect(spec.TaskTemplate.Placement?.Constraints == ["node.role==manager"])
        #expect(spec.TaskTemplate.Networks == [NetworkAttachmentConfig(Target: "n1", Aliases: ["web"])])
        #expect(spec.UpdateConfig == UpdateConfig(Parallelism: 2, FailureAction: "rollback", Order: "start-first"))
        #expect(spec.RollbackConfig?.Order == "stop-first")
        #expect(
            spec.EndpointSpec
                == EndpointSpec(
                    Mode: "dnsrr", Ports: [PortConfig(Protocol: "udp", TargetPort: 53, PublishedPort: 5353, PublishMode: "host")]))
    }

    /// Every key of real CLI bodies re-spelt in lower and in upper case decodes to the same spec:
    /// no field of the models is matched by its exact spelling only.
    @Test(arguments: [CLIBodies.globalService, CLIBodies.stackService, CLIBodies.swarmInit])
    func respeltCLIBodiesDecodeTheSame(body: String) throws {
        for transform in [{ (s: String) in s.lowercased() }, { (s: String) in s.uppercased() }] {
            let respelt = try Respell.keys(of: body, with: transform)
            #expect(!respelt.contains("\"TaskTemplate\"") && !respelt.contains("\"ListenAddr\""))
            if body == CLIBodies.swarmInit {
                #expect(try decode(SwarmInitRequest.self, respelt) == decode(SwarmInitRequest.self, body))
            } else {
                #expect(try decode(ServiceSpec.self, respelt) == decode(ServiceSpec.self, body))
            }
        }
    }

    @Test func dictionaryKeysAreDataAndKeepTheirSpelling() throws {
        let spec = try decode(
            ServiceSpec.self,
            """
            {"Name": "l", "labels": {"a": "1", "A": "2", "name": "3", "Mode": "4"}, "TaskTemplate": {"ContainerSpec": {"Image": "x"}}}
            """)
        #expect(spec.Labels == ["a": "1", "A": "2", "name": "3", "Mode": "4"])
        #expect(spec.Name == "l" && spec.Mode == nil)
    }

    @Test func twoSpellingsOfOneFieldAreRefusedByName() throws {
        // Go keeps the later one; keeping either silently would drop the other.
        let body = """
            {"Name": "x", "TaskTemplate": {"ContainerSpec": {"Image": "x"}}, "Mode": {"Global": {}, "replicated": {"Replicas": 2}, "global": {}}}
            """
        do {
            _ = try decode(ServiceSpec.self, body)
            Issue.record("an ambiguous body decoded")
        } catch {
            #expect(error.status == 400)
            #expect(error.message.contains("\"Global\", \"global\""), "\(error.message)")
            #expect(error.message.contains("Mode.Global"), "\(error.message)")
        }
        #expect(throws: EngineError.self) {
            try decode(NodeSpec.self, "{\"Role\": \"worker\", \"role\": \"manager\", \"Availability\": \"active\"}")
        }
    }

    @Test func unknownKeysAreIgnoredAndAbsentOnesAreZero() throws {
        let spec = try decode(
            ServiceSpec.self,
            """
            {"Name": "z", "Frobnicate": {"x": [1, 2, {"y": null}]}, "TaskTemplate": {"ContainerSpec": {"Image": "x", "Nonsense": true}}}
            """)
        #expect(spec.Name == "z" && spec.TaskTemplate.ContainerSpec == ContainerSpec(Image: "x"))
        // docker-py sends EncryptionConfig without every member; Go fills in false.
        let swarm = try decode(SwarmSpec.self, "{\"Name\": \"default\", \"encryptionconfig\": {}}")
        #expect(swarm.EncryptionConfig == SwarmSpec.EncryptionConfig(AutoLockManagers: false))
        let autolock = try decode(SwarmSpec.self, "{\"EncryptionConfig\": {\"autolockmanagers\": true}}")
        #expect(autolock.EncryptionConfig?.AutoLockManagers == true)
        // A null member is the zero value (Go ignores null for a non-pointer field) or nil.
        let join = try decode(SwarmJoinRequest.self, "{\"RemoteAddrs\": null, \"JoinToken\": null, \"AdvertiseAddr\": null}")
        #expect(join.RemoteAddrs.isEmpty && join.JoinToken.isEmpty && join.AdvertiseAddr == nil)
        // An absent image is not a decoding error: it decodes as "" and the cluster model refuses it in
        // swarmkit's words (`MeshCluster.ServiceSpec.validate`, SpecRuleTests).
        let noImage = try decode(ServiceSpec.self, "{\"Name\": \"n\", \"TaskTemplate\": {\"ContainerSpec\": {}}}")
        #expect(try ServiceSpecNormalizer.normalize(noImage).TaskTemplate.ContainerSpec?.Image == "")
    }

    @Test func wrongTypesAndNumbersOutOfRangeAre400s() throws {
        let base =
            "{\"Name\": \"w\", \"TaskTemplate\": {\"ContainerSpec\": {\"Image\": \"x\"}}, \"mode\": {\"replicated\": {\"replicas\": %@}}}"
        for bad in ["1.5", "-1", "true", "\"two\"", "18446744073709551616", "[1]", "{}"] {
            do {
                _ = try decode(ServiceSpec.self, base.replacingOccurrences(of: "%@", with: bad))
                Issue.record("Replicas \(bad) decoded")
            } catch {
                #expect(error.status == 400 && error.message.hasPrefix("invalid JSON: "), "\(bad): \(error)")
                #expect(error.message.contains("Mode.Replicated.Replicas"), "\(bad): \(error.message)")
            }
        }
        let big = try decode(ServiceSpec.self, base.replacingOccurrences(of: "%@", with: "18446744073709551615"))
        #expect(big.Mode?.Replicated?.Replicas == UInt64.max)
        #expect(throws: EngineError.self) { try decode(ServiceSpec.self, "{\"Name\": 5}") }
        #expect(throws: EngineError.self) { try decode(ServiceSpec.self, "[]") }
        #expect(throws: EngineError.self) { try decode(ServiceSpec.self, "{\"Name\": \"x\"") }
    }

    /// Unknown members may nest as deep as the JSON parser allows (512 levels) and are skipped; deeper
    /// bodies are a 400, never a crash.
    @Test func deeplyNestedUnknownMembersAreSkippedOrRefused() throws {
        func body(depth: Int) -> String {
            "{\"Name\": \"deep\", \"Junk\": " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
                + ", \"TaskTemplate\": {\"ContainerSpec\": {\"Image\": \"x\"}}}"
        }
        #expect(try decode(ServiceSpec.self, body(depth: 500)).Name == "deep")
        #expect(throws: EngineError.self) { try decode(ServiceSpec.self, body(depth: 5000)) }
    }

    /// The body parser: RFC 8259 exactly, with Go's choices where the RFC leaves them open (invalid
    /// UTF-8 and lone surrogates become U+FFFD, the last of duplicate keys wins).
    @Test func theParserReadsJSONAsGoDoes() throws {
        func value<T: Decodable>(_ t: T.Type, _ json: String) throws -> T { try EngineJSON.decodeRequest(t, from: Data(json.utf8)) }
        #expect(
            try value([String].self, #"["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u4E2D", "\ud83d\ude00", "\ud83d", "x\ud83d\u0041"]"#)
                == ["a\"b\\c/d\u{8}\u{c}\n\r\t", "é中", "😀", "\u{FFFD}", "x\u{FFFD}A"])
        #expect(try EngineJSON.decodeRequest([String].self, from: Data([0x5B, 0x22, 0x61, 0xFF, 0x22, 0x5D])) == ["a\u{FFFD}"])
        #expect(try value([Int64].self, " [0, -0, 9223372036854775807, -9223372036854775808]\n") == [0, 0, .max, .min])
        #expect(try value([UInt64].self, "[18446744073709551615]") == [.max])
        #expect(try value([Double].self, "[1.5, -2e3, 1E-2, 0.0, 7]") == [1.5, -2000, 0.01, 0, 7])
        #expect(try value([String: Int].self, #"{"a": 1, "a": 2, "b": 3}"#) == ["a": 2, "b": 3])
        #expect(try value([Bool?].self, "[true, false, null]") == [true, false, nil])
        #expect(try value([[String: [Int]]].self, "[{}, {\"x\": []}]") == [[:], ["x": []]])
        let bad = [
            "", " ", "[01]", "[1.]", "[.5]", "[+1]", "[1e]", "[-]", "[1e999]", "{\"a\" 1}", "[1,]", "{\"a\":1,}", "{,}",
            "[1] x", "[tru]", "nul", "[\"a\u{01}\"]", "[\"\\x\"]", "[\"\\u12\"]", "{'a':1}", "[\"open]", "[1", "{\"a\":",
        ]
        for text in bad {
            #expect(throws: (any Error).self, "\(text.debugDescription)") { _ = try value([Int].self, text) }
        }
    }

    @Test func everyRequestModelFolds() throws {
        let net = try decode(
            NetworkCreateRequest.self,
            """
            {"name": "n", "driver": "overlay", "attachable": true, "ingress": false,
             "ipam": {"driver": "default", "config": [{"subnet": "10.9.0.0/24", "gateway": "10.9.0.1", "iprange": "10.9.0.0/25"}]},
             "options": {"com.docker.network.driver.mtu": "1400"}, "labels": {"Team": "a"}}
            """)
        #expect(net.Name == "n" && net.Attachable == true && net.Ingress == false)
        #expect(net.IPAM?.Config == [IPAMConfig(Subnet: "10.9.0.0/24", IPRange: "10.9.0.0/25", Gateway: "10.9.0.1")])
        #expect(net.Options == ["com.docker.network.driver.mtu": "1400"] && net.Labels == ["Team": "a"])

        let node = try decode(
            NodeSpec.self, "{\"availability\": \"drain\", \"role\": \"manager\", \"name\": \"n1\", \"labels\": {\"Zone\": \"b\"}}")
        #expect(node == NodeSpec(Name: "n1", Labels: ["Zone": "b"], Role: "manager", Availability: "drain"))

        let initRequest = try decode(
            SwarmInitRequest.self,
            """
            {"listenaddr": "0.0.0.0:2377", "advertiseaddr": "10.1.0.1", "forcenewcluster": false, "defaultaddrpool": ["10.20.0.0/16"],
             "subnetsize": 26, "spec": {"orchestration": {"taskhistoryretentionlimit": 7}, "raft": {"snapshotinterval": 5000},
             "dispatcher": {"heartbeatperiod": 5000000000}, "caconfig": {"nodecertexpiry": 7776000000000000}}}
            """)
        #expect(initRequest.AdvertiseAddr == "10.1.0.1" && initRequest.DefaultAddrPool == ["10.20.0.0/16"] && initRequest.SubnetSize == 26)
        #expect(initRequest.Spec?.Orchestration?.TaskHistoryRetentionLimit == 7 && initRequest.Spec?.Raft?.SnapshotInterval == 5000)
        #expect(
            initRequest.Spec?.Dispatcher?.HeartbeatPeriod == 5_000_000_000
                && initRequest.Spec?.CAConfig?.NodeCertExpiry == 7_776_000_000_000_000)

        let join = try decode(
            SwarmJoinRequest.self, "{\"remoteaddrs\": [\"10.1.0.1:2377\"], \"jointoken\": \"SWMTKN-1-x\", \"availability\": \"pause\"}")
        #expect(join.RemoteAddrs == ["10.1.0.1:2377"] && join.JoinToken == "SWMTKN-1-x" && join.Availability == "pause")
    }

    /// Through the HTTP server: docker-py's global service is stored as global.
    @Test func dockerPysCreateBodyOverHTTP() async throws {
        let t = try await TestServer.start()
        defer { t.stop() }
        _ = try await t.engine.initSwarm(SwarmInitRequest())
        let created = try await t.curl(
            "POST", "/v1.50/services/create",
            body: """
                {"Name": "pyglobal", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}, "Mode": {"global": {}}}
                """)
        #expect(created.status == 201, "\(created)")
        let inspect = try await t.curl("GET", "/v1.50/services/pyglobal")
        #expect(inspect.body.contains("\"Mode\":{\"Global\":{}}"), "\(inspect.body)")
        let ambiguous = try await t.curl(
            "POST", "/v1.50/services/create",
            body: """
                {"Name": "two", "TaskTemplate": {"ContainerSpec": {"Image": "busybox"}}, "mode": {"Global": {}, "GLOBAL": {}}}
                """)
        #expect(ambiguous.status == 400 && ambiguous.body.hasPrefix("{\"message\":\"invalid JSON: "), "\(ambiguous)")
    }
}

/// Bodies the docker 28 CLI sent (reference/docker-cli-requests.txt).
enum CLIBodies {
    static let globalService = """
        {"Name": "g", "Labels": {}, "TaskTemplate": {"ContainerSpec": {"Image": "traefik/whoami:latest", "Args": ["--port", "80"], "Env": ["A=1"], "Init": false, "DNSConfig": {}}, "Resources": {"Limits": {}, "Reservations": {}}, "RestartPolicy": {"Condition": "on-failure", "Delay": 5000000000, "MaxAttempts": 0}, "Placement": {"Constraints": ["node.role==manager"], "MaxReplicas": 2}, "Networks": [{"Target": "pjekk6wk57h3jcl9nioob0tim"}], "ForceUpdate": 1}, "Mode": {"Global": {}}, "UpdateConfig": {"Parallelism": 2, "Delay": 10000000000, "FailureAction": "rollback", "Monitor": 5000000000, "MaxFailureRatio": 0, "Order": "start-first"}, "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 3000000000, "MaxFailureRatio": 0, "Order": "stop-first"}, "EndpointSpec": {"Mode": "dnsrr", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}, {"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "ingress"}]}}
        """
    static let stackService = """
        {"Name": "demo_web", "Labels": {"com.docker.stack.image": "nginx:1.27", "com.docker.stack.namespace": "demo"}, "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1.27", "Labels": {"com.docker.stack.namespace": "demo"}, "Privileges": {"CredentialSpec": null, "SELinuxContext": null, "NoNewPrivileges": false}}, "Resources": {}, "Placement": {}, "Networks": [{"Target": "demo_front", "Aliases": ["web"]}], "ForceUpdate": 0}, "Mode": {"Replicated": {"Replicas": 2}}, "UpdateConfig": {"Parallelism": 1, "Delay": 2000000000, "MaxFailureRatio": 0, "Order": ""}, "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]}}
        """
    static let swarmInit = """
        {"ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "10.1.0.1", "DataPathAddr": "", "DataPathPort": 4789, "DefaultAddrPool": ["10.0.0.0/8"], "ForceNewCluster": false, "Spec": {"Labels": {"Env": "x"}, "Orchestration": {"TaskHistoryRetentionLimit": 5}, "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 0, "LogEntriesForSlowFollowers": 500, "ElectionTick": 10, "HeartbeatTick": 1}, "Dispatcher": {"HeartbeatPeriod": 5000000000}, "CAConfig": {"NodeCertExpiry": 7776000000000000}, "TaskDefaults": {"LogDriver": {"Name": "json-file", "Options": {"Max-Size": "1m"}}}, "EncryptionConfig": {"AutoLockManagers": false}}, "AutoLockManagers": false, "Availability": "active", "SubnetSize": 24}
        """
}

/// Re-spells a body's object keys, leaving the keys of maps that hold the client's data alone.
enum Respell {
    static let dataMaps: Set<String> = ["Labels", "Options", "DriverOpts"]

    static func keys(of body: String, with transform: @escaping (String) -> String) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(body.utf8))
        let data = try JSONSerialization.data(withJSONObject: walk(object, transform, isData: false), options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func walk(_ value: Any, _ transform: (String) -> String, isData: Bool) -> Any {
        if let dict = value as? [String: Any] {
            var out: [String: Any] = [:]
            for (k, v) in dict { out[isData ? k : transform(k)] = walk(v, transform, isData: !isData && dataMaps.contains(k)) }
            return out
        }
        if let array = value as? [Any] { return array.map { walk($0, transform, isData: false) } }
        return value
    }
}
