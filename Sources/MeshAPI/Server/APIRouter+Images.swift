import Foundation
import NIOHTTP1

extension APIRouter {
    /// `GET /images/json`, `GET /images/{name}/json`, `POST /images/create?fromImage=&tag=`.
    func images(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        let s = r.segments
        switch (r.method, s.count) {
        case (.GET, 2) where s[1] == "json", (.HEAD, 2) where s[1] == "json":
            // dockerd's filters are dangling, label, before, since, reference; meshd lists every image and
            // refuses a filter rather than answer as if it had applied it.
            let args = try FilterArgs.parse(r.query["filters"], allowed: [])
            _ = args
            return .json(try await backend.listImages())
        case (.POST, 2) where s[1] == "create":
            return try await pull(r)
        case (.GET, 3...) where s.last == "json", (.HEAD, 3...) where s.last == "json":
            return .json(try await backend.inspectImage(s.dropFirst().dropLast().joined(separator: "/")))
        default:
            throw Self.pageNotFound
        }
    }

    func pull(_ r: APIRequest) async throws(EngineError) -> APIResponse {
        if let src = r.query["fromSrc"], !src.isEmpty { throw .notImplemented("image import (fromSrc) is not supported by meshd") }
        guard let from = r.query["fromImage"], !from.isEmpty else { throw .invalidArgument("fromImage is required") }
        try r.refuseRegistryCredentials()
        if let platform = r.query["platform"], !platform.isEmpty, platform != "linux/amd64", platform != "linux" {
            throw .invalidArgument("platform \(platform): meshd pulls linux/amd64 images only")
        }
        // dockerd: a `tag` replaces the one in fromImage; no tag and none in the name is every tag,
        // which meshd does not pull (refused rather than pulling only `latest`).
        var reference = from
        let named = Self.nameHasTagOrDigest(from)
        if let tag = r.query["tag"], !tag.isEmpty {
            if named.digest { throw .invalidArgument("fromImage \(from) has a digest: a tag cannot be added") }
            if named.tag, let colon = from.lastIndex(of: ":") { reference = String(from[..<colon]) }
            reference += tag.hasPrefix("sha256:") ? "@\(tag)" : ":\(tag)"
        } else if !named.tag && !named.digest {
            throw .invalidArgument("pulling every tag of \(from) (docker pull --all-tags) is not supported: name a tag")
        }
        let result = try await backend.pullImage(reference)
        // The pull is complete before the answer starts: a failure is a JSON error with its status,
        // a success the lines `docker pull` prints.
        let lines: [[String: String]] = [
            ["status": "Pulling from \(result.repository)", "id": result.tag],
            ["status": "Digest: \(result.digest)"],
            [
                "status": result.downloaded
                    ? "Status: Downloaded newer image for \(result.reference)" : "Status: Image is up to date for \(result.reference)"
            ],
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var body: [UInt8] = []
        for line in lines { body += Array((try? encoder.encode(line)) ?? Data()) + [0x0D, 0x0A] }
        return APIResponse(status: .ok, headers: [("Content-Type", "application/json")], body: .bytes(body))
    }

    /// Whether a reference names a tag (a `:` after its last `/`) or a digest (`@`).
    static func nameHasTagOrDigest(_ ref: String) -> (tag: Bool, digest: Bool) {
        if ref.contains("@") { return (false, true) }
        let lastSlash = ref.lastIndex(of: "/").map { ref.index(after: $0) } ?? ref.startIndex
        return (ref[lastSlash...].contains(":"), false)
    }
}
