import Foundation
import MeshAPI
import Testing

/// The pure pieces: URI parsing, filters, name resolution, spec normalisation, log framing.
@Suite("request decoding")
struct RequestDecodingTests {
    @Test func uriSplitsVersionSegmentsAndQuery() throws {
        let r = try APIRequest(
            method: .GET, uri: "/v1.45/services/my%20svc/logs?tail=all&filters=%7B%22a%22%3A1%7D&x=a+b&flag", contentType: nil, body: [])
        #expect(r.apiVersion == "1.45")
        #expect(r.segments == ["services", "my svc", "logs"])
        #expect(r.query["tail"] == "all" && r.query["filters"] == "{\"a\":1}" && r.query["x"] == "a b" && r.query["flag"] == "")
        #expect(try APIRequest(method: .GET, uri: "/_ping", contentType: nil, body: []).apiVersion == nil)
        // Not a version: stays a path segment (and is an unknown route later).
        #expect(try APIRequest(method: .GET, uri: "/v1/x", contentType: nil, body: []).segments == ["v1", "x"])
        #expect(throws: EngineError.self) { try APIRequest(method: .GET, uri: "/v2.0/info", contentType: nil, body: []) }
        #expect(throws: EngineError.self) { try APIRequest(method: .GET, uri: "/v1.23/info", contentType: nil, body: []) }
    }

    @Test func booleansFollowMoby() throws {
        let r = try APIRequest(method: .GET, uri: "/x?a=1&b=true&c=0&d=no&e=false&f=none&g=&h=yes", contentType: nil, body: [])
        #expect(r.bool("a") && r.bool("b") && r.bool("h"))
        #expect(!r.bool("c") && !r.bool("d") && !r.bool("e") && !r.bool("f") && !r.bool("g") && !r.bool("missing"))
    }

    @Test func filtersAcceptBothFormsAndRefuseUnknownKeys() throws {
        let modern = try FilterArgs.parse("{\"name\":{\"web\":true,\"api\":true},\"label\":{\"a=1\":true}}", allowed: ServiceFilter.keys)
        #expect(modern.get("name") == ["api", "web"] && modern.get("label") == ["a=1"])
        let legacy = try FilterArgs.parse("{\"name\":[\"web\"]}", allowed: ServiceFilter.keys)
        #expect(legacy.get("name") == ["web"])
        #expect(throws: EngineError.invalidArgument("invalid filter 'colour'")) {
            try FilterArgs.parse("{\"colour\":{\"red\":true}}", allowed: ServiceFilter.keys)
        }
        #expect(throws: EngineError.self) { try FilterArgs.parse("[1,2]", allowed: ServiceFilter.keys) }
        #expect(throws: EngineError.self) { try FilterArgs.parse("{\"name\":{\"x\":1}}", allowed: ServiceFilter.keys) }
        #expect(try FilterArgs.parse(nil, allowed: []).values.isEmpty)
        let labels = FilterArgs(["label": ["a", "b=2"]])
        #expect(labels.labels("label", match: ["a": "x", "b": "2"]))
        #expect(!labels.labels("label", match: ["a": "x", "b": "3"]))
        #expect(!labels.labels("label", match: ["b": "2"]))
    }

    @Test func namesResolveByIDThenNameThenUniquePrefix() throws {
        let items = [("abc123", "web"), ("abd456", "abc123x"), ("zzz", "abc")]
        func find(_ ref: String) throws(EngineError) -> String {
            try NameResolver.resolve(ref, kind: "service", in: items, id: { $0.0 }, name: { $0.1 }).0
        }
        #expect(try find("abc123") == "abc123")
        #expect(try find("abc") == "zzz")  // an exact name beats an ID prefix
        #expect(try find("abd") == "abd456")
        #expect(throws: EngineError.invalidArgument("service ab is ambiguous (2 matches found)")) { try find("ab") }
        #expect(throws: EngineError.notFound("service nope not found")) { try find("nope") }
    }

    @Test func specsAreNormalisedLikeSwarmkit() throws {
        var spec = ServiceSpec(
            Name: "web", TaskTemplate: TaskSpec(ContainerSpec: ContainerSpec(Image: "nginx")),
            Mode: ServiceMode(Replicated: .init()), UpdateConfig: UpdateConfig(Order: ""),
            EndpointSpec: EndpointSpec(Ports: [PortConfig(Protocol: nil, TargetPort: 80, PublishedPort: 8080, PublishMode: nil)]))
        let n = try ServiceSpecNormalizer.normalize(spec)
        #expect(n.Mode?.Replicated?.Replicas == 1)
        #expect(n.EndpointSpec?.Mode == "vip")
        #expect(n.EndpointSpec?.Ports == [PortConfig(Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress")])
        #expect(n.UpdateConfig?.Order == "stop-first")
        #expect(try ServiceSpecNormalizer.normalize(ServiceSpec(TaskTemplate: spec.TaskTemplate)).Mode?.Replicated?.Replicas == 1)

        // Rules about meaning (dnsrr with ingress ports, duplicate published ports, the name) are the
        // cluster model's alone (`MeshCluster.ServiceSpec.validate`, SpecRuleTests): the normaliser lets
        // them through rather than keep a second copy that could disagree.
        spec.EndpointSpec?.Mode = "dnsrr"
        #expect(throws: Never.self) { try ServiceSpecNormalizer.normalize(spec) }
        spec.EndpointSpec = EndpointSpec(Ports: [
            PortConfig(TargetPort: 80, PublishedPort: 80), PortConfig(TargetPort: 81, PublishedPort: 80),
        ])
        #expect(throws: Never.self) { try ServiceSpecNormalizer.normalize(spec) }
        spec.EndpointSpec = nil
        spec.Name = "-bad name"
        #expect(throws: Never.self) { try ServiceSpecNormalizer.normalize(spec) }
        spec.EndpointSpec = EndpointSpec(Mode: "anycast")
        #expect(throws: EngineError.self) { try ServiceSpecNormalizer.normalize(spec) }
        spec.EndpointSpec = nil
        spec.Name = "ok"
        spec.Mode = ServiceMode(Replicated: .init(Replicas: 2), Global: .init())
        #expect(throws: EngineError.self) { try ServiceSpecNormalizer.normalize(spec) }

        let d = ServiceSpecNormalizer.withDefaults(ServiceSpec(Name: "x", TaskTemplate: spec.TaskTemplate))
        #expect(
            d.UpdateConfig
                == UpdateConfig(Parallelism: 1, FailureAction: "pause", Monitor: 5_000_000_000, MaxFailureRatio: 0, Order: "stop-first"))
        #expect(d.TaskTemplate.RestartPolicy == RestartPolicy(Condition: "any", Delay: 5_000_000_000, MaxAttempts: 0))
        #expect(d.TaskTemplate.ContainerSpec?.StopGracePeriod == 10_000_000_000)
    }

    @Test func modelsRoundTripDockersJSON() throws {
        // `Replicated:{}` and a port without TargetPort (Go's omitempty) both decode.
        let json =
            #"{"Name":"w","TaskTemplate":{"ContainerSpec":{"Image":"x"},"Unknown":1},"Mode":{"Replicated":{}},"EndpointSpec":{"Ports":[{"PublishedPort":1}]}}"#
        let spec = try EngineJSON.decoder().decode(ServiceSpec.self, from: Data(json.utf8))
        #expect(spec.Mode?.Replicated != nil && spec.Mode?.Replicated?.Replicas == nil)
        #expect(spec.EndpointSpec?.Ports?.first?.TargetPort == 0)
        let now = Date(timeIntervalSince1970: 1_795_000_000.25)
        let swarm = Swarm(
            cluster: ClusterInfo(
                ID: "c", Version: ObjectVersion(3), CreatedAt: now, UpdatedAt: now, Spec: SwarmSpec(),
                TLSInfo: TLSInfo(), DefaultAddrPool: ["10.0.0.0/8"], SubnetSize: 24, DataPathPort: 4789),
            JoinTokens: JoinTokens(Worker: "w", Manager: "m"))
        let data = try EngineJSON.encoder().encode(swarm)
        let text = String(decoding: data, as: UTF8.self)
        // Flat keys, as Go's embedded struct gives them (key order is the encoder's business).
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(
            object["ID"] as? String == "c" && (object["JoinTokens"] as? [String: String]) == ["Worker": "w", "Manager": "m"], "\(text)")
        #expect(object["DefaultAddrPool"] as? [String] == ["10.0.0.0/8"] && text.contains("10.0.0.0/8"))
        #expect(text.contains("\"CreatedAt\":\"2026-11-18T") && text.contains(".250Z\""), "\(text)")
        #expect(try EngineJSON.decoder().decode(Swarm.self, from: data) == swarm)
        #expect(EngineJSON.parseDate("2026-11-22T20:17:36.578457123Z") != nil && EngineJSON.parseDate("0001-01-01T00:00:00Z") != nil)
    }

    @Test func logFramesCarryDetailsAndTimestamps() {
        var o = LogOptions()
        o.details = true
        o.timestamps = true
        let m = LogMessage(
            stream: .stderr, timestamp: Date(timeIntervalSince1970: 1_795_000_000.5), line: "hi there",
            serviceID: "s", nodeID: "n", taskID: "t/1")
        let f = LogFraming.frame(m, options: o)
        let payload = String(decoding: f[8...], as: UTF8.self)
        #expect(f[0] == 2 && Int(f[7]) == f.count - 8)
        #expect(
            payload
                == "2026-11-18T11:06:40.500000000Z com.docker.swarm.node.id=n,com.docker.swarm.service.id=s,com.docker.swarm.task.id=t%2F1 hi there\n",
            "\(payload)")
    }
}
