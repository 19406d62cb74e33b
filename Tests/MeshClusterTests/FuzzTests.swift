import Foundation
import MeshKernel
import Testing
@testable import MeshCluster

/// Every parser of user or network input in the module, fed random and mutated inputs: none may crash, and
/// whatever parses must print back to something that parses the same.
@Suite struct FuzzTests {
    static let alphabet = Array("SWMTKN-1abcxyz0129=!.node.labels.idhostnamerole/ \n\u{0}é".unicodeScalars)

    func randomText<G: RandomNumberGenerator>(_ g: inout G, max: Int) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...max, using: &g) { s.append(Self.alphabet.randomElement(using: &g)!) }
        return String(s)
    }

    func mutate<G: RandomNumberGenerator>(_ text: String, _ g: inout G) -> String {
        var chars = Array(text.unicodeScalars)
        for _ in 0..<Int.random(in: 1...4, using: &g) {
            switch Int.random(in: 0..<3, using: &g) {
            case 0 where !chars.isEmpty: chars.remove(at: Int.random(in: 0..<chars.count, using: &g))
            case 1: chars.insert(Self.alphabet.randomElement(using: &g)!, at: Int.random(in: 0...chars.count, using: &g))
            default: if !chars.isEmpty { chars[Int.random(in: 0..<chars.count, using: &g)] = Self.alphabet.randomElement(using: &g)! }
            }
        }
        var v = String.UnicodeScalarView()
        v.append(contentsOf: chars)
        return String(v)
    }

    @Test func joinTokensAndConstraints() throws {
        var g = SplitMix64(seed: 11)
        let ca = try ClusterCA.create(clusterID: "c", now: t0)
        let tokens = JoinTokens(ca: ca)
        var parsedTokens = 0, parsedConstraints = 0, inputs = 0
        let seeds = [tokens.worker, tokens.manager, "node.labels.zone==east", "node.role!=manager", "node.id==abc"]
        for i in 0..<40_000 {
            let text = i % 2 == 0 ? randomText(&g, max: 90) : mutate(seeds[i % seeds.count], &g)
            inputs += 1
            if let t = try? JoinToken.parse(text) {
                parsedTokens += 1
                #expect(try JoinToken.parse(t.description) == t)
                _ = try? tokens.role(for: text)
            }
            if let c = try? PlacementConstraint.parse(text) {
                parsedConstraints += 1
                #expect(try PlacementConstraint.parse(c.description) == c)
            }
            _ = IPPrefix(text)
        }
        #expect(inputs == 40_000)
        #expect(parsedConstraints > 100)
        print("fuzz: \(inputs) inputs, \(parsedTokens) tokens and \(parsedConstraints) constraints parsed")
    }

    @Test func storedRecordsAndCertificates() throws {
        var g = SplitMix64(seed: 12)
        let ca = try ClusterCA.create(clusterID: "c", now: t0)
        let pem = ca.certificatePEM
        let record = String(decoding: try JSONEncoder().encode(service("s", replicas: 2)), as: UTF8.self)
        for _ in 0..<3_000 {
            _ = try? ClusterCA(certificatePEM: mutate(pem, &g), keyPEM: ca.keyPEM)
            _ = try? JSONDecoder().decode(ClusterService.self, from: Data(mutate(record, &g).utf8))
        }
    }
}
